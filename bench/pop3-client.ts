/*
 * The benchmark's POP3 client for both servers: a raw socket, single-line replies and multi-line
 * replies read in full up to the ".CRLF" terminator (the bytes counted, dot-stuffing left in place),
 * commands optionally pipelined (RFC 2449 PIPELINING; answers come in order). Every wait is bounded.
 * Before its first connection the client runs once against a stand-in server of its own, so its JIT
 * warm-up is not charged to whichever server the bench measures first; a body is scanned for its
 * terminator once, not again with every chunk that arrives.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

const TERMINATOR = Buffer.from('\r\n.\r\n');

interface Waiter {
  multi: boolean;
  resolve(r: { status: string; bytes: number }): void;
  reject(e: Error): void;
}

let warmedUp = false;

export class RawPop3 {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiters: Waiter[] = [];
  private status: string | null = null;
  private failure: Error | null = null;
  /** where to go on looking for the body's terminator in `buf` */
  private scanned = 0;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /**
   * Runs the client against a stand-in server on a loopback port of its own (canned 8 KB replies):
   * RETRs one at a time and pipelined, so the socket path and the parser are compiled before the first
   * real server is measured.
   */
  private static async warmUp(): Promise<void> {
    const body = `${'w'.repeat(78)}\r\n`.repeat(100);
    const retr = `+OK ${body.length} octets\r\n${body}.\r\n`;
    const server = createServer((s) => {
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.write('+OK warm-up\r\n');
      let pending = '';
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        const lines = pending.split('\r\n');
        pending = lines.pop()!;
        s.write(lines.map((l) => (l.startsWith('RETR') ? retr : '+OK\r\n')).join(''));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await RawPop3.open((server.address() as AddressInfo).port);
      for (let i = 0; i < 1000; i++) await c.cmd('RETR 1', true);
      await Promise.all(c.pipeline(Array.from({ length: 1000 }, () => 'RETR 1'), true));
      await c.cmd('QUIT');
      c.close();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  static async connect(port: number): Promise<RawPop3> {
    if (!warmedUp) {
      warmedUp = true;
      await RawPop3.warmUp();
    }
    return RawPop3.open(port);
  }

  private static async open(port: number): Promise<RawPop3> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const c = new RawPop3(socket);
    const greeting = await c.expect(false);
    if (!greeting.status.startsWith('+OK')) throw new Error(`bad POP3 greeting: ${greeting.status}`);
    return c;
  }

  /** Sends one command; `multi` when an +OK answer is followed by a multi-line body. */
  cmd(line: string, multi = false): Promise<{ status: string; bytes: number }> {
    this.socket.write(`${line}\r\n`);
    return this.expect(multi);
  }

  /** Sends several commands in one write; answers in order. */
  pipeline(lines: readonly string[], multi: boolean): Promise<{ status: string; bytes: number }>[] {
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
    return lines.map(() => this.expect(multi));
  }

  close(): void {
    this.socket.destroy();
  }

  private expect(multi: boolean, timeoutMs = 60_000): Promise<{ status: string; bytes: number }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error('POP3 reply timeout')), timeoutMs);
      this.waiters.push({
        multi,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.drain();
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    this.drain();
  }

  private drain(): void {
    for (;;) {
      const w = this.waiters[0];
      if (!w) return;
      if (this.status === null) {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return;
        this.status = this.buf.toString('latin1', 0, nl);
        this.buf = this.buf.subarray(nl + 2);
        if (!w.multi || !this.status.startsWith('+OK')) {
          this.waiters.shift();
          const status = this.status;
          this.status = null;
          w.resolve({ status, bytes: 0 });
          continue;
        }
      }
      // the body may be empty: then the terminator is just ".CRLF" at the start
      if (this.buf.length >= 3 && this.buf[0] === 0x2e && this.buf[1] === 0x0d && this.buf[2] === 0x0a) {
        this.finish(w, 0, 3);
        continue;
      }
      const end = this.buf.indexOf(TERMINATOR, this.scanned);
      if (end < 0) {
        // the terminator may begin in the last bytes already here
        this.scanned = Math.max(0, this.buf.length - TERMINATOR.length + 1);
        return;
      }
      this.finish(w, end + 2, end + TERMINATOR.length);
    }
  }

  private finish(w: Waiter, bytes: number, consumed: number): void {
    this.waiters.shift();
    const status = this.status!;
    this.status = null;
    this.buf = this.buf.subarray(consumed);
    this.scanned = 0;
    w.resolve({ status, bytes });
  }
}
