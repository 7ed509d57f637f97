/*
 * Bounded POP3 command-line framing over byte chunks. Pure: owns only the bytes of the current line and
 * never keeps more than `limit` octets of it (RFC 2449 §4: 255 octets with the CRLF; AUTH continuation
 * lines get a larger limit from the session). A longer line is dropped up to its LF and reported once;
 * NUL, other control bytes, a bare CR and invalid UTF-8 are reported after the whole line is consumed, so
 * the session answers -ERR and stays in step. A bare LF ends a line as CRLF does (POP3 carries no data
 * upstream, so there is nothing to smuggle).
 */

/** RFC 2449 §4: a command line is at most 255 octets including the CRLF. */
export const COMMAND_LINE_LIMIT = 255;
/** A SASL continuation line (RFC 5034 §4 lifts the 255-octet limit for it). */
export const AUTH_LINE_LIMIT = 8192;

export type LineErrorKind = 'too_long' | 'control' | 'bad_utf8';

export type LineEvent = { kind: 'line'; text: string } | { kind: 'error'; error: LineErrorKind };

export interface ReadResult {
  /** null when the chunk ended before the line did */
  event: LineEvent | null;
  /** offset in the chunk after what was consumed */
  next: number;
}

const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class LineReader {
  /** maximum octets of one line including its line end; may change between lines */
  limit: number;
  private parts: Buffer[] = [];
  private length = 0;
  private discarding = false;
  private control = false;

  constructor(limit = COMMAND_LINE_LIMIT) {
    this.limit = limit;
  }

  /** part of a line has been read but not its end */
  get partial(): boolean {
    return this.length > 0;
  }

  /** octets of the current line held in memory (never more than `limit`) */
  get bufferedOctets(): number {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }

  reset(): void {
    this.parts = [];
    this.length = 0;
    this.discarding = false;
    this.control = false;
  }

  read(chunk: Buffer, offset: number): ReadResult {
    const lf = chunk.indexOf(LF, offset);
    const end = lf < 0 ? chunk.length : lf;
    this.length += end - offset + (lf < 0 ? 0 : 1);
    if (this.length > this.limit && !this.discarding) {
      this.discarding = true;
      this.parts = [];
    }
    if (!this.discarding && end > offset) {
      this.parts.push(chunk.subarray(offset, end));
    }
    if (lf < 0) return { event: null, next: chunk.length };
    const event = this.finish();
    this.reset();
    return { event, next: lf + 1 };
  }

  private finish(): LineEvent {
    if (this.discarding) return { kind: 'error', error: 'too_long' };
    let bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    for (const b of bytes) if (b < 0x20 || b === 0x7f) return { kind: 'error', error: 'control' };
    try {
      return { kind: 'line', text: utf8.decode(bytes) };
    } catch {
      return { kind: 'error', error: 'bad_utf8' };
    }
  }
}
