/*
 * The one IMAP client of the benchmark, used against Cartero and Dovecot alike so neither side is
 * favoured by a library's habits: a raw socket, commands pipelined with their own tags, and every
 * response read in full — literals are consumed byte for byte (and counted) before the next line is
 * parsed, and a command completes only on its tagged line. Untagged lines are counted; their text is
 * kept only when asked for (SEARCH results), so a 100,000-line FETCH costs the client little.
 * Every wait is bounded by a timeout. Loopback only.
 */
import { connect, type Socket } from 'node:net';

export interface ImapReply {
  status: 'OK' | 'NO' | 'BAD';
  /** the tagged line's text after the status */
  text: string;
  /** untagged responses received while the command ran */
  untagged: number;
  /** untagged lines (without literal bytes), when the command asked to keep them */
  lines: string[];
  /** bytes of literals in the untagged responses */
  literalBytes: number;
}

interface Pending {
  tag: string;
  keep: boolean;
  reply: ImapReply;
  resolve(r: ImapReply): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const LITERAL_AT_END = /\{(\d+)\+?\}\r\n$/;

export class RawImap {
  private buf: Buffer = Buffer.alloc(0);
  private literal = 0;
  private partial = '';
  private readonly queue: Pending[] = [];
  private nextTag = 1;
  private continuation: ((line: string) => void) | null = null;
  private greeting: ((line: string) => void) | null = null;
  private failure: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static connect(port: number, timeoutMs = 30_000): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      const client = new RawImap(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('no IMAP greeting'));
      }, timeoutMs);
      client.greeting = (line) => {
        clearTimeout(timer);
        if (line.startsWith('* OK') || line.startsWith('* PREAUTH')) resolve(client);
        else reject(new Error(`bad greeting: ${line.trim()}`));
      };
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends `${tag} ${text}` (or raw bytes after the tag, for literals) and resolves on the tagged reply. */
  command(text: string | Buffer[], options: { keep?: boolean; timeoutMs?: number } = {}): Promise<ImapReply> {
    if (this.failure) return Promise.reject(this.failure);
    const tag = `b${this.nextTag++}`;
    const promise = new Promise<ImapReply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`timeout waiting for ${tag}`)), options.timeoutMs ?? 120_000);
      this.queue.push({ tag, keep: options.keep ?? false, reply: { status: 'OK', text: '', untagged: 0, lines: [], literalBytes: 0 }, resolve, reject, timer });
    });
    if (typeof text === 'string') this.socket.write(`${tag} ${text}\r\n`);
    else this.socket.write(Buffer.concat([Buffer.from(`${tag} `), ...text]));
    return promise;
  }

  /** `command` that must end in OK. */
  async ok(text: string | Buffer[], options: { keep?: boolean; timeoutMs?: number } = {}): Promise<ImapReply> {
    const r = await this.command(text, options);
    if (r.status !== 'OK') throw new Error(`${typeof text === 'string' ? text.slice(0, 60) : 'command'}: ${r.status} ${r.text}`);
    return r;
  }

  /** APPEND with a non-synchronising literal (LITERAL+, offered by both servers). */
  append(mailbox: string, flags: readonly string[], content: Buffer): Promise<ImapReply> {
    return this.ok([Buffer.from(`APPEND ${mailbox} (${flags.join(' ')}) {${content.length}+}\r\n`), content, Buffer.from('\r\n')]);
  }

  /** Starts IDLE and resolves once the server's continuation arrived; `done` ends it. */
  async idle(timeoutMs = 30_000): Promise<{ done(): Promise<ImapReply> }> {
    const cont = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no IDLE continuation')), timeoutMs);
      this.continuation = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
    const reply = this.command('IDLE', { timeoutMs: 3_600_000 });
    reply.catch(() => undefined);
    await cont;
    return {
      done: () => {
        this.socket.write('DONE\r\n');
        return reply;
      },
    };
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.literal > 0) {
        const take = Math.min(this.literal, buf.length - pos);
        const head = this.queue[0];
        if (head) head.reply.literalBytes += take;
        this.literal -= take;
        pos += take;
        if (this.literal > 0) break;
        continue;
      }
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      const text = buf.toString('latin1', pos, nl + 1);
      pos = nl + 1;
      const lit = text.endsWith('}\r\n') ? LITERAL_AT_END.exec(text) : null;
      if (lit) {
        this.partial += text;
        this.literal = Number(lit[1]);
        continue;
      }
      const line = this.partial + text;
      this.partial = '';
      this.line(line);
    }
    this.buf = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
  }

  private line(line: string): void {
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      return g(line);
    }
    if (line.startsWith('+')) {
      const c = this.continuation;
      this.continuation = null;
      c?.(line);
      return;
    }
    const head = this.queue[0];
    if (line.startsWith('* ')) {
      if (head) {
        head.reply.untagged++;
        if (head.keep) head.reply.lines.push(line);
      }
      return;
    }
    const sp = line.indexOf(' ');
    const tag = line.slice(0, sp);
    const at = this.queue.findIndex((p) => p.tag === tag);
    if (at < 0) return;
    const [p] = this.queue.splice(at, 1);
    clearTimeout(p!.timer);
    const rest = line.slice(sp + 1).trimEnd();
    const status = rest.slice(0, rest.indexOf(' ') < 0 ? rest.length : rest.indexOf(' ')) as ImapReply['status'];
    p!.reply.status = status;
    p!.reply.text = rest.slice(status.length + 1);
    p!.resolve(p!.reply);
  }
}

/** The numbers of a `* SEARCH` (or `* ESEARCH ... ALL set`) response, expanded. */
export function searchHits(lines: readonly string[]): number[] {
  const out: number[] = [];
  for (const l of lines) {
    const m = /^\* SEARCH(.*)$/i.exec(l.trimEnd());
    if (m) {
      for (const n of m[1]!.trim().split(/\s+/)) if (/^\d+$/.test(n)) out.push(Number(n));
      continue;
    }
    const e = /\bALL ([\d:,]+)/.exec(l);
    if (/^\* ESEARCH/i.test(l) && e) {
      for (const part of e[1]!.split(',')) {
        const [a, b] = part.split(':').map(Number);
        for (let n = a!; n <= (b ?? a!); n++) out.push(n);
      }
    }
  }
  return out;
}
