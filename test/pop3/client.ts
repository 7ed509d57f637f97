/*
 * A scripted POP3 client for tests over any duplex stream (in-memory pair or TCP/TLS socket): sends
 * lines, reads status lines and multi-line bodies as raw bytes, so tests compare what went over the wire.
 * Every wait has a deadline and fails with what was received.
 */
import { Duplex } from 'node:stream';

/** Two connected duplex streams: what one writes, the other reads; end and destroy travel across. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(e, cb) {
        const p = peer();
        if (!p.readableEnded) p.push(null);
        cb(e);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

export interface Response {
  status: string;
  /** a multi-line body as sent (still dot-stuffed), without the terminating ".\r\n" */
  raw?: Buffer;
}

const TERMINATOR = Buffer.from('\r\n.\r\n');

/** Removes one leading "." from each line of a dot-stuffed body (what a POP3 client does). */
export function unstuff(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let p = 0;
  while (p < raw.length) {
    const lf = raw.indexOf(0x0a, p);
    const end = lf < 0 ? raw.length : lf + 1;
    out.push(raw.subarray(raw[p] === 0x2e ? p + 1 : p, end));
    p = end;
  }
  return Buffer.concat(out);
}

export class Pop3Client {
  data = Buffer.alloc(0);
  private pos = 0;
  ended = false;

  constructor(readonly stream: Duplex) {
    stream.on('data', (d: Buffer) => (this.data = Buffer.concat([this.data, d])));
    stream.on('end', () => {
      this.ended = true;
      stream.end();
    });
    stream.on('error', () => undefined);
  }

  /** everything not yet read by response() */
  get unread(): string {
    return this.data.subarray(this.pos).toString('utf8');
  }

  send(data: string | Buffer): void {
    this.stream.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** The next response; with `multi`, a +OK is followed by a body up to the terminating line. */
  async response(multi = false, timeoutMs = 3000): Promise<Response> {
    let result: Response | null = null;
    await this.until(() => (result = this.take(multi)) !== null, timeoutMs, multi ? 'a multi-line response' : 'a response');
    // forget what was read, so long sessions do not copy it again on every chunk
    this.data = this.data.subarray(this.pos);
    this.pos = 0;
    return result!;
  }

  private take(multi: boolean): Response | null {
    const eol = this.data.indexOf('\r\n', this.pos);
    if (eol < 0) return null;
    const status = this.data.subarray(this.pos, eol).toString('utf8');
    if (!multi || !status.startsWith('+OK')) {
      this.pos = eol + 2;
      return { status };
    }
    const bodyStart = eol + 2;
    if (this.data.subarray(bodyStart, bodyStart + 3).equals(Buffer.from('.\r\n'))) {
      this.pos = bodyStart + 3;
      return { status, raw: Buffer.alloc(0) };
    }
    const end = this.data.indexOf(TERMINATOR, bodyStart);
    if (end < 0) return null;
    this.pos = end + TERMINATOR.length;
    return { status, raw: this.data.subarray(bodyStart, end + 2) };
  }

  /** Sends one command and returns its status line. */
  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return (await this.response()).status;
  }

  /** Sends one command with a multi-line answer; returns the status and the body lines (unstuffed). */
  async multi(line: string): Promise<{ status: string; lines: string[]; body: Buffer }> {
    this.send(`${line}\r\n`);
    const r = await this.response(true);
    const body = r.raw ? unstuff(r.raw) : Buffer.alloc(0);
    const text = body.toString('utf8');
    return { status: r.status, body, lines: text === '' ? [] : text.replace(/\r\n$/, '').split('\r\n') };
  }

  async closed(timeoutMs = 3000): Promise<void> {
    await this.until(() => this.ended, timeoutMs, 'the server to close');
  }

  async until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; unread:\n${this.unread.slice(0, 2000)}`);
      // wake on the next bytes from the server, or after a few ms for conditions outside the stream
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.stream.off('data', wake);
          this.stream.off('end', wake);
          resolve();
        };
        const timer = setTimeout(wake, 5);
        this.stream.on('data', wake);
        this.stream.on('end', wake);
      });
    }
  }
}
