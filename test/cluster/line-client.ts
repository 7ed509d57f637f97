/*
 * A minimal line client for IMAP, POP3 and LMTP in tests: send a line, read lines until one matches.
 * Every read is bounded in time; the connection targets loopback only.
 */
import { connect, type Socket } from 'node:net';

export class LineClient {
  private buffer = '';
  private lines: string[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      let i: number;
      while ((i = this.buffer.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 2);
      }
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Lines up to and including the first that matches; throws on timeout or close. */
  async until(pattern: RegExp, timeoutMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const seen: string[] = [];
    for (;;) {
      while (this.lines.length > 0) {
        const line = this.lines.shift() as string;
        seen.push(line);
        if (pattern.test(line)) return seen;
      }
      if (this.closed) throw new Error(`connection closed before ${pattern}: ${JSON.stringify(seen)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}: ${JSON.stringify(seen)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  async command(line: string, pattern: RegExp, timeoutMs?: number): Promise<string> {
    this.send(line);
    const lines = await this.until(pattern, timeoutMs);
    return lines[lines.length - 1] as string;
  }

  close(): void {
    this.socket.destroy();
  }
}
