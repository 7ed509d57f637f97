/*
 * Streaming, bounded framing of IMAP commands over byte chunks. An IMAP command is one or more lines
 * joined by literals ({n}, {n+}, ~{n}), so the reader hands out the command as text fragments and literal
 * bytes; tokenising is src/imap/proto/tokens.ts's job. Limits live here because they must be enforced
 * before the bytes are kept: the text of one command (literals excluded) is bounded by `maxLine`, and each
 * announced literal is checked against `literalLimit(command)` before a "+" is sent (synchronising) or a
 * byte is kept (non-synchronising). Pure: no I/O, the session writes what the events ask for.
 */

export interface CommandParts {
  /** text fragments and literals, alternating: text, literal, text, literal, …, text (CRLF stripped) */
  texts: string[];
  literals: Buffer[];
}

export type ReaderEvent =
  /** a complete command */
  | { kind: 'command'; parts: CommandParts }
  /** a raw line (AUTHENTICATE responses, IDLE's DONE), asked for with `expectRawLine` */
  | { kind: 'raw'; text: string }
  /** a synchronising literal was accepted: the session must send "+ Ready for literal data" */
  | { kind: 'continue' }
  /**
   * The command cannot be read. `fatal`: the stream is out of sync (a non-synchronising literal over the
   * limit), answer BAD and close. Otherwise the rest of the command was discarded and the reader is at a
   * fresh line. `tooBig` marks an APPEND literal over APPENDLIMIT (answered NO [TOOBIG]).
   */
  | { kind: 'error'; tag: string | null; text: string; fatal: boolean; tooBig: boolean };

export interface ReaderLimits {
  /** octets of command text, literals excluded */
  maxLine: number;
  /** largest literal accepted for a command (upper-cased name, e.g. "APPEND"); the reader never keeps more */
  literalLimit: (command: string) => number;
}

const LF = 0x0a;
const CR = 0x0d;
const LITERAL_SUFFIX = /(~?)\{(\d{1,20})(\+|-)?\}$/;

type Mode =
  | { m: 'line' }
  /** skipping the rest of an over-long line */
  | { m: 'skip'; tag: string | null }
  | { m: 'literal'; remaining: number; chunks: Buffer[] };

export class CommandReader {
  private mode: Mode = { m: 'line' };
  private line: Buffer[] = [];
  private lineBytes = 0;
  private texts: string[] = [];
  private literals: Buffer[] = [];
  /** text octets of the command so far (literals excluded) */
  private commandBytes = 0;
  private raw = false;

  constructor(private readonly limits: ReaderLimits) {}

  /** The next line is handed out whole as a `raw` event (SASL responses, DONE). */
  expectRawLine(): void {
    this.raw = true;
  }

  /** Drops everything buffered (STARTTLS: pipelined plaintext is never interpreted). */
  reset(): void {
    this.mode = { m: 'line' };
    this.line = [];
    this.lineBytes = 0;
    this.texts = [];
    this.literals = [];
    this.commandBytes = 0;
    this.raw = false;
  }

  /** True when a command is partly read (used to tell a client that went away mid-command). */
  get midCommand(): boolean {
    return this.texts.length > 0 || this.lineBytes > 0 || this.mode.m === 'literal';
  }

  /**
   * Consumes bytes from `chunk` at `offset` up to the first event. Returns the event (or null when the
   * chunk was used up first) and the offset after what was consumed.
   */
  read(chunk: Buffer, offset: number): { event: ReaderEvent | null; next: number } {
    let i = offset;
    while (i < chunk.length) {
      const mode = this.mode;
      if (mode.m === 'literal') {
        const take = Math.min(mode.remaining, chunk.length - i);
        mode.chunks.push(chunk.subarray(i, i + take));
        mode.remaining -= take;
        i += take;
        if (mode.remaining === 0) {
          this.literals.push(Buffer.concat(mode.chunks));
          this.mode = { m: 'line' };
        }
        continue;
      }
      const lf = chunk.indexOf(LF, i);
      const end = lf === -1 ? chunk.length : lf;
      if (mode.m === 'skip') {
        i = lf === -1 ? chunk.length : lf + 1;
        if (lf !== -1) {
          this.resetCommand();
          this.mode = { m: 'line' };
          return { event: { kind: 'error', tag: mode.tag, text: 'Command line too long', fatal: false, tooBig: false }, next: i };
        }
        continue;
      }
      const piece = chunk.subarray(i, end);
      if (this.commandBytes + this.lineBytes + piece.length > this.limits.maxLine) {
        const tag = this.guessTag(piece);
        this.line = [];
        this.lineBytes = 0;
        this.mode = { m: 'skip', tag };
        continue;
      }
      this.line.push(piece);
      this.lineBytes += piece.length;
      if (lf === -1) return { event: null, next: chunk.length };
      i = lf + 1;
      const event = this.endOfLine();
      if (event) return { event, next: i };
    }
    return { event: null, next: i };
  }

  private guessTag(piece: Buffer): string | null {
    const first = this.texts[0] ?? Buffer.concat([...this.line, piece.subarray(0, 100)]).toString('latin1');
    const tag = first.split(' ', 1)[0] ?? '';
    return /^[\x21-\x7e]{1,64}$/.test(tag) && !/[(){%*"\\+]/.test(tag) ? tag : null;
  }

  private resetCommand(): void {
    this.line = [];
    this.lineBytes = 0;
    this.texts = [];
    this.literals = [];
    this.commandBytes = 0;
  }

  private endOfLine(): ReaderEvent | null {
    let buf = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line);
    if (buf.length > 0 && buf[buf.length - 1] === CR) buf = buf.subarray(0, buf.length - 1);
    this.line = [];
    this.lineBytes = 0;
    // IMAP text is UTF-8 (UTF8=ACCEPT) or ASCII; invalid sequences become U+FFFD and fail later checks
    const text = buf.toString('utf8');
    if (this.raw) {
      this.raw = false;
      return { kind: 'raw', text };
    }
    this.commandBytes += buf.length + 2;
    const m = LITERAL_SUFFIX.exec(text);
    this.texts.push(text);
    if (!m) {
      const parts = { texts: this.texts, literals: this.literals };
      this.texts = [];
      this.literals = [];
      this.commandBytes = 0;
      return { kind: 'command', parts };
    }
    const size = Number(m[2]);
    const sync = m[3] === undefined;
    const first = this.texts[0]!;
    const words = first.split(' ', 4);
    const tag = words[0] ?? '';
    let command = (words[1] ?? '').toUpperCase();
    if (command === 'UID') command = `UID ${(words[2] ?? '').toUpperCase()}`;
    const limit = this.limits.literalLimit(command);
    if (size > limit) {
      const tooBig = command === 'APPEND';
      const text = tooBig ? `Message too big (APPENDLIMIT ${limit})` : `Literal too big (limit ${limit} octets)`;
      this.resetCommand();
      if (!sync) this.mode = { m: 'skip', tag: null };
      return { kind: 'error', tag: validTag(tag), text, fatal: !sync, tooBig };
    }
    if (size === 0) {
      this.literals.push(Buffer.alloc(0));
      return sync ? { kind: 'continue' } : null;
    }
    this.mode = { m: 'literal', remaining: size, chunks: [] };
    return sync ? { kind: 'continue' } : null;
  }
}

function validTag(tag: string): string | null {
  return /^[\x21-\x7e]{1,64}$/.test(tag) && !/[(){%*"\\+]/.test(tag) ? tag : null;
}
