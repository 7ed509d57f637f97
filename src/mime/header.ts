/*
 * Header blocks as bytes: where each field starts and ends, where the header ends, and the text of a
 * field's value. Never throws and never looks past `limit`; a header without a blank line simply runs to
 * `limit` (or to the line a caller says stops it, e.g. a MIME boundary). Lines end in LF or CRLF.
 */
import { isUtf8 } from 'node:buffer';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

export interface HeaderField {
  /** field name as written (trimmed) */
  name: string;
  /** offset of the field's first byte */
  start: number;
  /** offset just past the field's last line break (or `limit`) */
  end: number;
  /** offset just past the colon; -1 for a line without one */
  valueStart: number;
}

export interface HeaderBlock {
  /** where the body starts: after the blank line, or at the stopping line / limit */
  bodyStart: number;
  /** true when a blank line ended the header */
  blankLine: boolean;
}

/** Offset just past the next LF at or after `pos`, or `limit`. */
export function nextLine(buf: Buffer, pos: number, limit: number): number {
  if (pos >= limit) return limit;
  const i = buf.indexOf(LF, pos);
  return i < 0 || i >= limit ? limit : i + 1;
}

export function isBlank(buf: Buffer, ls: number, le: number): boolean {
  const n = le - ls;
  return (n === 1 && buf[ls] === LF) || (n === 2 && buf[ls] === CR && buf[ls + 1] === LF);
}

/** Bytes as text: UTF-8 when they are valid UTF-8, else Latin-1 (raw 8-bit headers stay readable). */
export function bytesText(buf: Buffer, a: number, b: number): string {
  const slice = buf.subarray(a, b);
  return isUtf8(slice) ? slice.toString('utf8') : slice.toString('latin1');
}

/** Removes folding (a line break followed by white space keeps the white space) and stray CR/LF. */
export function unfold(s: string): string {
  return s.replace(/\r?\n(?=[ \t])/g, '').replace(/[\r\n]/g, '');
}

/** Unfolded, trimmed value text of a field, or "" for a line without a colon. */
export function fieldValue(buf: Buffer, f: HeaderField): string {
  if (f.valueStart < 0) return '';
  return unfold(bytesText(buf, f.valueStart, f.end)).trim();
}

/**
 * Scans the header that starts at `start`. `stop(ls, le)` may end it early at a line (that line is not
 * part of the header and the body is empty from there). `visit` sees each field in order.
 */
export function scanHeader(
  buf: Buffer,
  start: number,
  limit: number,
  visit: (f: HeaderField) => void,
  stop?: (ls: number, le: number) => boolean,
): HeaderBlock {
  let pos = start;
  let cur: HeaderField | null = null;
  const flush = () => {
    if (cur) visit(cur);
    cur = null;
  };
  while (pos < limit) {
    const le = nextLine(buf, pos, limit);
    if (isBlank(buf, pos, le)) {
      flush();
      return { bodyStart: le, blankLine: true };
    }
    if (stop && buf[pos] === 0x2d && stop(pos, le)) {
      flush();
      return { bodyStart: pos, blankLine: false };
    }
    const first = buf[pos];
    if (cur && (first === SP || first === TAB)) {
      cur.end = le;
    } else {
      flush();
      cur = startField(buf, pos, le);
    }
    pos = le;
  }
  flush();
  return { bodyStart: limit, blankLine: false };
}

function startField(buf: Buffer, ls: number, le: number): HeaderField {
  // field names are short; a colon further than this is not a header field's
  const colon = buf.subarray(ls, Math.min(le, ls + 1000)).indexOf(COLON);
  if (colon <= 0) return { name: '', start: ls, end: le, valueStart: -1 };
  const name = buf.toString('latin1', ls, ls + colon).trim();
  return { name, start: ls, end: le, valueStart: ls + colon + 1 };
}

/** Every field of a header block (for HEADER.FIELDS and header searches). */
export function headerFields(buf: Buffer, start: number, limit: number): HeaderField[] {
  const out: HeaderField[] = [];
  scanHeader(buf, start, limit, (f) => out.push(f));
  return out;
}
