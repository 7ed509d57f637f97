/*
 * parseStructure: one pass over the stored bytes that finds every MIME part's header, body and end
 * offsets. Boundaries of all open multiparts are checked innermost first on each line that starts with
 * "--", so an outer boundary closes inner parts that never closed (RFC 2046 §5.1.2) and the scan stays
 * linear. Hostile shapes are bounded: nesting deeper than MAX_DEPTH and parts beyond MAX_PARTS are
 * left opaque. Never throws; anything malformed still yields a usable tree.
 */
import { envelopeOf, ENVELOPE_FIELDS } from './envelope.js';
import { fieldValue, type HeaderField, nextLine, scanHeader } from './header.js';
import { parseDisposition, parseLanguage, parseMediaType } from './params.js';
import { tokenize, MIME_SPECIALS } from './tokens.js';
import type { MessageStructure, MimePart } from './types.js';

/** Deeper entities are opaque leaves (their bytes are still served whole). */
export const MAX_DEPTH = 50;
/** Parts beyond this many in one message are not split out (they stay inside their multipart's bytes). */
export const MAX_PARTS = 10_000;
/** RFC 2046 allows 70 characters; a longer boundary is not one we look for. */
const MAX_BOUNDARY = 200;

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const NL_DASHES = Buffer.from('\n--');

const WANTED = new Set<string>([
  'content-type',
  'content-transfer-encoding',
  'content-id',
  'content-description',
  'content-md5',
  'content-disposition',
  'content-language',
  'content-location',
  ...ENVELOPE_FIELDS,
]);

interface Stop {
  /** index in the boundary stack (outermost 0) */
  index: number;
  close: boolean;
  /** the delimiter line */
  ls: number;
  le: number;
}

interface Entity {
  part: MimePart;
  first: Map<string, HeaderField>;
  stop: Stop | null;
}

export function isIdentityEncoding(encoding: string | null): boolean {
  if (encoding === null) return true;
  const e = encoding.toLowerCase();
  return e === '7bit' || e === '8bit' || e === 'binary';
}

export function countLines(buf: Buffer, a: number, b: number): number {
  let n = 0;
  let i = buf.indexOf(LF, a);
  while (i >= 0 && i < b) {
    n++;
    i = buf.indexOf(LF, i + 1);
  }
  return b > a && buf[b - 1] !== LF ? n + 1 : n;
}

class Parser {
  private readonly stack: Buffer[] = [];
  private parts = 0;
  private readonly len: number;

  constructor(private readonly buf: Buffer) {
    this.len = buf.length;
  }

  /** The open boundary that the line [ls, le) delimits, innermost first; null when it is content. */
  private match(ls: number, le: number): Stop | null {
    const { buf } = this;
    if (buf[ls] !== DASH || buf[ls + 1] !== DASH) return null;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const b = this.stack[i]!;
      if (le - ls < b.length || buf.compare(b, 0, b.length, ls, ls + b.length) !== 0) continue;
      let p = ls + b.length;
      if (p + 1 < le && buf[p] === DASH && buf[p + 1] === DASH) return { index: i, close: true, ls, le };
      while (p < le && (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === CR || buf[p] === LF)) p++;
      if (p === le) return { index: i, close: false, ls, le };
    }
    return null;
  }

  /** The next delimiter line at or after the line starting at `from`. */
  private findStop(from: number): Stop | null {
    if (this.stack.length === 0) return null;
    let ls = from;
    while (ls < this.len) {
      if (this.buf[ls] === DASH) {
        const m = this.match(ls, nextLine(this.buf, ls, this.len));
        if (m) return m;
      }
      const i = this.buf.indexOf(NL_DASHES, ls);
      if (i < 0) return null;
      ls = i + 1;
    }
    return null;
  }

  /** Where a body ends before a delimiter: the line break in front of it belongs to the delimiter. */
  private endBefore(stop: Stop | null, bodyStart: number): number {
    if (!stop) return this.len;
    let e = stop.ls;
    if (e > bodyStart && this.buf[e - 1] === LF) e--;
    if (e > bodyStart && this.buf[e - 1] === CR) e--;
    return e;
  }

  entity(start: number, depth: number, inDigest: boolean): Entity {
    const { buf } = this;
    const first = new Map<string, HeaderField>();
    const head = scanHeader(
      buf,
      start,
      this.len,
      (f) => {
        const key = f.name.toLowerCase();
        if (WANTED.has(key) && !first.has(key)) first.set(key, f);
      },
      this.stack.length > 0 ? (ls, le) => this.match(ls, le) !== null : undefined,
    );
    const part = describe(buf, first, inDigest, start, head.bodyStart);
    if (depth < MAX_DEPTH && part.type === 'multipart') {
      const boundary = part.params.find((p) => p[0].toLowerCase() === 'boundary')?.[1] ?? '';
      if (boundary.length > 0 && boundary.length <= MAX_BOUNDARY) return { part, first, stop: this.multipart(part, boundary, depth) };
    }
    if (depth < MAX_DEPTH && part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global') && isIdentityEncoding(part.encoding)) {
      const inner = this.entity(part.bodyStart, depth + 1, false);
      part.message = { envelope: envelopeOf(buf, inner.first), root: inner.part };
      part.end = inner.part.end;
      part.lines = countLines(buf, part.bodyStart, part.end);
      return { part, first, stop: inner.stop };
    }
    const stop = this.findStop(part.bodyStart);
    part.end = this.endBefore(stop, part.bodyStart);
    part.lines = countLines(buf, part.bodyStart, part.end);
    return { part, first, stop };
  }

  /** Fills in the children and end of a multipart; returns the enclosing delimiter that ended it. */
  private multipart(part: MimePart, boundary: string, depth: number): Stop | null {
    this.stack.push(Buffer.from(`--${boundary}`, 'utf8'));
    const mine = this.stack.length - 1;
    const children: MimePart[] = [];
    const digest = part.subtype === 'digest';
    let stop = this.findStop(part.bodyStart);
    let after: Stop | null = null;
    let epilogue = -1;
    while (stop) {
      if (stop.index !== mine) {
        after = stop; // an enclosing boundary: this multipart never closed
        break;
      }
      if (stop.close) {
        epilogue = stop.le;
        break;
      }
      if (this.parts >= MAX_PARTS) {
        stop = this.findStop(stop.le);
        continue;
      }
      this.parts++;
      const child = this.entity(stop.le, depth + 1, digest);
      children.push(child.part);
      stop = child.stop;
    }
    this.stack.pop();
    // the epilogue runs to the next enclosing delimiter
    if (epilogue >= 0) after = this.findStop(epilogue);
    part.end = this.endBefore(after, part.bodyStart);
    part.lines = countLines(this.buf, part.bodyStart, part.end);
    if (children.length > 0) part.parts = children;
    return after;
  }
}

function describe(buf: Buffer, first: Map<string, HeaderField>, inDigest: boolean, headerStart: number, bodyStart: number): MimePart {
  const text = (name: string): string | null => {
    const f = first.get(name);
    if (!f) return null;
    const v = fieldValue(buf, f);
    return v === '' ? null : v;
  };
  const ctValue = text('content-type');
  const media = ctValue === null ? null : parseMediaType(ctValue);
  const fallback = inDigest
    ? { type: 'message', subtype: 'rfc822', params: [] }
    : { type: 'text', subtype: 'plain', params: [['charset', 'us-ascii'] as [string, string]] };
  const cte = text('content-transfer-encoding');
  const encoding = cte === null ? null : (tokenize(cte, MIME_SPECIALS).find((t) => t.kind === 'word')?.value ?? null);
  const dispValue = text('content-disposition');
  const langValue = text('content-language');
  const location = text('content-location');
  return {
    headerStart,
    bodyStart,
    end: bodyStart,
    type: media?.type ?? fallback.type,
    subtype: media?.subtype ?? fallback.subtype,
    params: media?.params ?? fallback.params,
    id: text('content-id'),
    description: text('content-description'),
    encoding,
    md5: text('content-md5'),
    disposition: dispValue === null ? null : parseDisposition(dispValue),
    language: langValue === null ? null : parseLanguage(langValue),
    location: location === null ? null : location.replace(/\s+/g, ''),
    lines: 0,
  };
}

/** The structure of a stored message. Pure and total: any bytes give a structure. */
export function parseStructure(content: Buffer): MessageStructure {
  const top = new Parser(content).entity(0, 0, false);
  return { version: 1, envelope: envelopeOf(content, top.first), root: top.part };
}
