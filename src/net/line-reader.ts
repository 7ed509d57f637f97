/*
 * Bounded command-line framing over byte chunks, for the line protocols (SMTP, LMTP, POP3). Pure: owns
 * only the bytes of the current line and never keeps more than `limit` octets of it (a longer line is
 * discarded up to its LF and reported once). A bare CR, control bytes and invalid UTF-8 are reported
 * after the whole line is consumed, so the session can answer and stay in step. A line ended by a bare
 * LF is returned flagged: SMTP refuses it from untrusted clients (smuggling), POP3 takes it as CRLF.
 */

export type LineError = 'too_long' | 'bare_cr' | 'control' | 'bad_utf8';

export type LineEvent = { kind: 'line'; text: string; bareLf: boolean } | { kind: 'error'; error: LineError; bareLf: boolean };

export interface ReadResult {
  /** null when the chunk ended before the line did (its bytes are kept, within the limit) */
  event: LineEvent | null;
  /** offset in the chunk after what was consumed */
  next: number;
}

const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class LineReader {
  /** maximum octets of one line including its CRLF; may be changed between lines (AUTH exchanges) */
  limit: number;
  private parts: Buffer[] = [];
  private length = 0;
  private discarding = false;
  private lastCr = false;
  private bareCr = false;
  private control = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** true when part of a line has been read and its end not yet */
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
    this.lastCr = false;
    this.bareCr = false;
    this.control = false;
  }

  read(chunk: Buffer, offset: number): ReadResult {
    const lf = chunk.indexOf(LF, offset);
    const end = lf < 0 ? chunk.length : lf;
    this.length += end - offset + (lf < 0 ? 0 : 1);
    if (this.length > this.limit && !this.discarding) {
      // Keep nothing of an over-long line: memory stays bounded whatever the client sends.
      this.discarding = true;
      this.parts = [];
    }
    if (!this.discarding) {
      this.scan(chunk, offset, end);
      if (end > offset) this.parts.push(chunk.subarray(offset, end));
    } else if (end > offset) {
      // still needed to tell a CRLF from a bare LF at the end of the discarded line
      this.lastCr = chunk[end - 1] === CR;
    }
    if (lf < 0) return { event: null, next: chunk.length };
    const event = this.finish();
    this.reset();
    return { event, next: lf + 1 };
  }

  private scan(chunk: Buffer, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const b = chunk[i]!;
      if (this.lastCr) this.bareCr = true;
      this.lastCr = b === CR;
      if ((b < 0x20 && b !== CR) || b === 0x7f) this.control = true;
    }
  }

  private finish(): LineEvent {
    const bareLf = !this.lastCr;
    if (this.discarding) return { kind: 'error', error: 'too_long', bareLf };
    if (this.bareCr) return { kind: 'error', error: 'bare_cr', bareLf };
    if (this.control) return { kind: 'error', error: 'control', bareLf };
    let bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    if (this.lastCr) bytes = bytes.subarray(0, bytes.length - 1);
    try {
      return { kind: 'line', text: utf8.decode(bytes), bareLf };
    } catch {
      return { kind: 'error', error: 'bad_utf8', bareLf };
    }
  }
}
