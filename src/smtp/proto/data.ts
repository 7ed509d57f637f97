/*
 * The DATA byte state machine (RFC 5321 §4.1.1.4, §4.5.2). Pure and streaming: chunks in, message pieces
 * out (views of the input, never a copy of the whole message). Only <CRLF>.<CRLF> ends the data; a line
 * start exists only after CRLF, so <LF>.<CRLF>, <CR>.<CRLF>, <LF>.<LF> and <CRLF>.<LF> never end it.
 * Dot-unstuffing removes exactly the first "." of a line. Bare LF / bare CR are recorded, not repaired;
 * past the size limit nothing more is emitted and the session answers 552 at the terminator.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CR_BYTE = Buffer.from([CR]);

const enum State {
  /** inside a line */
  Mid,
  /** a CR was seen (and emitted); an LF makes it a line end */
  Cr,
  /** just after CRLF (or at the start of the data) */
  LineStart,
  /** CRLF "." seen; the dot is never emitted (stuffing or terminator) */
  Dot,
  /** CRLF "." CR seen; the CR is held until we know whether an LF ends the data */
  DotCr,
}

export interface DataFeedResult {
  /** message content in order; views into the input chunk (or a constant CR) */
  pieces: Buffer[];
  /** the terminator was consumed */
  done: boolean;
  /** offset in the chunk after what was consumed (after the terminator when done) */
  next: number;
}

export class DataReader {
  /** message octets seen after unstuffing, counted even past the limit */
  size = 0;
  overflow = false;
  bareLf = false;
  bareCr = false;
  private state = State.LineStart;

  constructor(readonly limit: number) {}

  feed(chunk: Buffer, offset = 0): DataFeedResult {
    const pieces: Buffer[] = [];
    const n = chunk.length;
    let runStart = offset;
    let i = offset;
    while (i < n) {
      if (this.state === State.Mid) {
        i = this.skipLine(chunk, i);
        continue;
      }
      const b = chunk[i]!;
      switch (this.state) {
        case State.Cr:
          if (b === LF) this.state = State.LineStart;
          else this.afterBareCr(b);
          break;
        case State.LineStart:
          if (b === DOT) {
            this.emit(pieces, chunk, runStart, i);
            runStart = i + 1;
            this.state = State.Dot;
          } else this.inLine(b);
          break;
        case State.Dot:
          if (b === CR) {
            runStart = i + 1;
            this.state = State.DotCr;
          } else this.inLine(b);
          break;
        case State.DotCr:
          if (b === LF) return { pieces, done: true, next: i + 1 };
          // "." CR x: the dot was stuffing, the held CR is content (and bare)
          this.add(pieces, CR_BYTE);
          runStart = i;
          this.afterBareCr(b);
          break;
      }
      i++;
    }
    this.emit(pieces, chunk, runStart, n);
    return { pieces, done: false, next: n };
  }

  /**
   * The Mid state without stepping every byte: jumps to the next LF with indexOf (native, much faster
   * than a byte loop on long lines) and classifies what it skipped. Only bytes that can change the
   * state matter inside a line: a CR not right before an LF is a bare CR, an LF without a CR before it
   * a bare LF. Returns the offset after what it consumed; the state is Cr, LineStart or Mid after it.
   */
  private skipLine(chunk: Buffer, i: number): number {
    const n = chunk.length;
    const lf = chunk.indexOf(LF, i);
    const end = lf === -1 ? n : lf;
    // a CR before end - 1 is followed by something other than LF (at end - 1 it is a CRLF, or, at the
    // end of the chunk, pending: the next chunk decides)
    if (!this.bareCr) {
      const cr = chunk.indexOf(CR, i);
      if (cr !== -1 && cr < end - 1) this.bareCr = true;
    }
    if (lf === -1) {
      this.state = chunk[n - 1] === CR ? State.Cr : State.Mid;
      return n;
    }
    // In Mid the byte before i is never a CR (a CR moves to Cr), so an LF at i is bare.
    if (lf > i && chunk[lf - 1] === CR) this.state = State.LineStart;
    else this.bareLf = true;
    return lf + 1;
  }

  private inLine(b: number): void {
    if (b === CR) this.state = State.Cr;
    else {
      if (b === LF) this.bareLf = true;
      this.state = State.Mid;
    }
  }

  private afterBareCr(b: number): void {
    this.bareCr = true;
    this.state = b === CR ? State.Cr : State.Mid;
  }

  private emit(pieces: Buffer[], chunk: Buffer, from: number, to: number): void {
    if (to > from) this.add(pieces, chunk.subarray(from, to));
  }

  private add(pieces: Buffer[], piece: Buffer): void {
    this.size += piece.length;
    if (this.size > this.limit) this.overflow = true;
    if (!this.overflow) pieces.push(piece);
  }
}
