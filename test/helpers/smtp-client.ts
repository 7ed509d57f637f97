/*
 * A deliberately small SMTP client for end-to-end tests that need to know exactly which message got
 * which reply (crash tests): one command at a time, no pipelining, replies parsed as code + text.
 * Not a delivery agent; it trusts the server and throws on any unexpected reply.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  text: string;
}

const REPLY_TIMEOUT_MS = 60_000;

export class TestSmtpClient {
  private buffer = '';
  private waiters: ((r: Reply | Error) => void)[] = [];
  private replies: (Reply | Error)[] = [];
  private closed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.end(err));
    socket.on('close', () => this.end(new Error('connection closed')));
  }

  static async open(port: number, host = '127.0.0.1'): Promise<TestSmtpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new TestSmtpClient(socket);
    const greeting = await client.read();
    if (greeting.code !== 220) throw new Error(`greeting: ${greeting.code} ${greeting.text}`);
    return client;
  }

  async command(line: string, expect?: number): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    const r = await this.read();
    if (expect !== undefined && r.code !== expect) throw new Error(`${line.split(' ')[0]}: ${r.code} ${r.text}`);
    return r;
  }

  /** MAIL, RCPT, DATA and the dot-stuffed content; resolves with the final reply. */
  async send(sender: string, recipients: string[], content: string): Promise<Reply> {
    await this.command(`MAIL FROM:<${sender}>`, 250);
    for (const r of recipients) await this.command(`RCPT TO:<${r}>`, 250);
    await this.command('DATA', 354);
    const body = content.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(body.endsWith('\r\n') ? `${body}.\r\n` : `${body}\r\n.\r\n`);
    return this.read();
  }

  close(): void {
    this.socket.destroy();
  }

  read(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return ready instanceof Error ? Promise.reject(ready) : Promise.resolve(ready);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      // a server that stops answering fails the test instead of hanging it; the connection is dropped
      const timer = setTimeout(() => {
        this.end(new Error(`no reply in ${REPLY_TIMEOUT_MS / 1000} s`));
        this.socket.destroy();
      }, REPLY_TIMEOUT_MS);
      this.waiters.push((r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let lines: string[] = [];
    for (;;) {
      const i = this.buffer.indexOf('\r\n');
      if (i < 0) break;
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      lines.push(line);
      if (line[3] !== '-') {
        this.push({ code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join('\n') });
        lines = [];
      }
    }
    if (lines.length > 0) this.buffer = lines.map((l) => `${l}\r\n`).join('') + this.buffer;
  }

  /** Every pending and later read fails once the connection is gone. */
  private end(err: Error): void {
    this.closed ??= err;
    for (const w of this.waiters.splice(0)) w(this.closed);
  }

  private push(r: Reply | Error): void {
    const w = this.waiters.shift();
    if (w) w(r);
    else this.replies.push(r);
  }
}
