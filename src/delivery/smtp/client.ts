/*
 * One SMTP client connection (RFC 5321) to one address: connect, greeting, EHLO with HELO fallback,
 * STARTTLS, AUTH PLAIN/LOGIN, a mail transaction (pipelined when the peer offers PIPELINING), RSET for
 * reuse, QUIT. The same connection speaks LMTP (RFC 2033) to a TCP address or a Unix socket: LHLO
 * instead of EHLO (no HELO fallback) and one reply per accepted recipient after the end of data, read
 * one by one so that a connection lost half way still tells which recipients were answered. It only
 * speaks the protocol and reports replies; what a reply means for each recipient is the agent's
 * business. Every wait has its own deadline (Postfix's per-phase timeouts); a peer that times out,
 * drops the connection or sends garbage raises SmtpFailure with Postfix-style wording ("lost
 * connection with mx[1.2.3.4]:25 while sending message body"), except while reading LMTP's
 * per-recipient replies, where the loss is reported next to the replies already read.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { ServerClock } from '../../net/clock.js';
import { HELO_CAPABILITIES, parseEhlo, type Capabilities } from './capabilities.js';
import { relayName, type Target } from './mx.js';
import { ReplyProtocolError, ReplyReader, replyText, type ServerReply } from './reply-reader.js';

export interface ClientTimeouts {
  connectMs: number;
  greetingMs: number;
  /** EHLO, MAIL, RCPT, DATA, RSET, STARTTLS, AUTH, QUIT replies */
  commandMs: number;
  /** writing one block of the message body */
  dataBlockMs: number;
  /** the reply to the end of data */
  finalMs: number;
  tlsHandshakeMs: number;
}

export const DEFAULT_TIMEOUTS: ClientTimeouts = {
  connectMs: 30_000,
  greetingMs: 300_000,
  commandMs: 300_000,
  dataBlockMs: 180_000,
  finalMs: 600_000,
  tlsHandshakeMs: 60_000,
};

export type FailureKind = 'connect' | 'timeout' | 'lost' | 'protocol' | 'tls';

export class SmtpFailure extends Error {
  override readonly name = 'SmtpFailure';
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface TlsParams {
  /** verify the certificate chain and the name */
  verify: boolean;
  /** the name the certificate must carry (the MX host name) */
  name: string;
  /** extra trusted CAs (PEM), e.g. a lab's self-signed certificate */
  ca?: string | Buffer | undefined;
}

export interface MessageTransaction {
  sender: string;
  /** MAIL parameters, each "KEY=VALUE" or "KEY" */
  mailParams: string[];
  recipients: { address: string; params: string[] }[];
  /** dot-stuffed payload ending with CRLF.CRLF (body.ts dataPayload) */
  payload: Buffer;
}

export interface TransactionReplies {
  mail: ServerReply;
  /** one per recipient, in order (missing when MAIL failed without pipelining) */
  rcpts: (ServerReply | null)[];
  /** reply to DATA; null when no recipient was accepted and DATA was not sent */
  data: ServerReply | null;
  /** reply to the end of data (LMTP: the first recipient's); null when the body was not sent */
  final: ServerReply | null;
  /**
   * LMTP only (RFC 2033 §4.2): the reply after the end of data of each recipient, in `recipients` order;
   * null for a refused RCPT and for every reply we did not get. `lost` says why replies are missing
   * (the connection is then broken); a missing reply never means the recipient was delivered.
   */
  lmtp?: { finals: (ServerReply | null)[]; lost: string | null };
}

export type ClientProtocol = 'smtp' | 'lmtp';

const BLOCK = 64 * 1024;

export class SmtpConnection {
  readonly relay: string;
  caps: Capabilities = HELO_CAPABILITIES;
  tls = false;
  /** set once anything went wrong: the connection must not be reused */
  broken = false;
  private stream: Socket | TLSSocket;
  private reader = new ReplyReader();
  private replies: ServerReply[] = [];
  private waiter: { resolve: (r: ServerReply) => void; reject: (e: Error) => void } | null = null;
  private failure: SmtpFailure | null = null;
  private phase = 'while receiving the initial server greeting';

  private constructor(
    readonly target: Target,
    socket: Socket,
    private readonly clock: ServerClock,
    readonly timeouts: ClientTimeouts,
    readonly protocol: ClientProtocol,
  ) {
    this.relay = relayName(target);
    this.stream = socket;
    this.attach(socket);
  }

  /** Opens the TCP (or Unix socket) connection (connect timeout); the greeting is read by `greeting()`. */
  static connect(target: Target, clock: ServerClock, timeouts: ClientTimeouts, localAddress?: string, protocol: ClientProtocol = 'smtp'): Promise<SmtpConnection> {
    return new Promise((resolve, reject) => {
      const socket =
        target.path !== undefined
          ? netConnect({ path: target.path })
          : netConnect({ host: target.address, port: target.port, ...(localAddress ? { localAddress } : {}) });
      const where = `connect to ${relayName(target)}`;
      const cancel = clock.schedule(timeouts.connectMs, () => {
        socket.destroy();
        reject(new SmtpFailure('connect', `${where}: Connection timed out`));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        cancel();
        socket.destroy();
        reject(new SmtpFailure('connect', `${where}: ${connectErrorText(err)}`));
      });
      socket.once('connect', () => {
        cancel();
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new SmtpConnection(target, socket, clock, timeouts, protocol));
      });
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.failure) return;
    let got: ServerReply[];
    try {
      got = this.reader.feed(chunk);
    } catch (err) {
      const detail = err instanceof ReplyProtocolError ? err.message : String(err);
      this.fail(new SmtpFailure('protocol', `${this.relay} sent a malformed reply ${this.phase}: ${detail}`));
      return;
    }
    for (const r of got) {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(r);
      } else this.replies.push(r);
    }
  };

  private readonly onClose = (): void => {
    this.fail(new SmtpFailure('lost', `lost connection with ${this.relay} ${this.phase}`));
  };

  private readonly onError = (err: Error): void => {
    this.fail(new SmtpFailure('lost', `lost connection with ${this.relay} ${this.phase}: ${err.message}`));
  };

  private attach(s: Socket | TLSSocket): void {
    s.on('data', this.onData);
    s.on('close', this.onClose);
    s.on('error', this.onError);
  }

  private detach(s: Socket | TLSSocket): void {
    s.off('data', this.onData);
    s.off('close', this.onClose);
    s.off('error', this.onError);
  }

  private fail(f: SmtpFailure): void {
    this.broken = true;
    if (!this.failure) this.failure = f;
    this.stream.destroy();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(this.failure);
    }
  }

  /** The next reply, within `ms`. */
  private read(ms: number): Promise<ServerReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const cancel = this.clock.schedule(ms, () => this.fail(new SmtpFailure('timeout', `conversation with ${this.relay} timed out ${this.phase}`)));
      this.waiter = {
        resolve: (r) => {
          cancel();
          resolve(r);
        },
        reject: (e) => {
          cancel();
          reject(e);
        },
      };
    });
  }

  private write(text: string | Buffer): void {
    if (this.failure) throw this.failure;
    this.stream.write(text);
  }

  async greeting(): Promise<ServerReply> {
    this.phase = 'while receiving the initial server greeting';
    return this.read(this.timeouts.greetingMs);
  }

  async command(line: string, phase: string): Promise<ServerReply> {
    this.phase = phase;
    this.write(`${line}\r\n`);
    return this.read(this.timeouts.commandMs);
  }

  /** EHLO, falling back to HELO when EHLO is refused with 5xx; LHLO for LMTP (no fallback); sets `caps`. */
  async hello(name: string): Promise<ServerReply> {
    if (this.protocol === 'lmtp') {
      const lhlo = await this.command(`LHLO ${name}`, 'after LHLO');
      this.caps = lhlo.code === 250 ? parseEhlo(lhlo.lines) : HELO_CAPABILITIES;
      return lhlo;
    }
    const ehlo = await this.command(`EHLO ${name}`, 'after EHLO');
    if (ehlo.code === 250) {
      this.caps = parseEhlo(ehlo.lines);
      return ehlo;
    }
    if (ehlo.code < 500) return ehlo;
    const helo = await this.command(`HELO ${name}`, 'after HELO');
    this.caps = HELO_CAPABILITIES;
    return helo;
  }

  /** STARTTLS and the handshake; returns the refusing reply, or null once TLS is up (then say EHLO again). */
  async startTls(params: TlsParams): Promise<ServerReply | null> {
    const r = await this.command('STARTTLS', 'after STARTTLS');
    if (r.code !== 220) return r;
    if (this.replies.length > 0 || this.reader.buffered > 0) {
      // bytes after the 220 would be read as if they came over TLS (CVE-2011-0411 style injection)
      this.fail(new SmtpFailure('protocol', `${this.relay} sent data after the STARTTLS reply`));
      throw this.failure;
    }
    const plain = this.stream as Socket;
    this.detach(plain);
    this.phase = 'during the TLS handshake';
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({
        socket: plain,
        ...(isIP(params.name) === 0 ? { servername: params.name } : {}),
        rejectUnauthorized: params.verify,
        ...(params.ca ? { ca: params.ca } : {}),
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(params.name, cert),
      });
      const cancel = this.clock.schedule(this.timeouts.tlsHandshakeMs, () => {
        s.destroy();
        reject(new SmtpFailure('tls', `TLS handshake with ${this.relay} timed out`));
      });
      s.once('secureConnect', () => {
        cancel();
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        cancel();
        s.destroy();
        reject(new SmtpFailure('tls', `TLS handshake with ${this.relay} failed: ${err.message}`));
      });
    }).catch((err: unknown) => {
      this.broken = true;
      this.failure = err instanceof SmtpFailure ? err : new SmtpFailure('tls', String(err));
      throw this.failure;
    });
    this.stream = secure;
    this.reader = new ReplyReader();
    this.attach(secure);
    this.tls = true;
    this.caps = HELO_CAPABILITIES;
    return null;
  }

  /** AUTH PLAIN (preferred) or LOGIN; returns the final reply (235 on success). */
  async auth(username: string, password: string): Promise<ServerReply> {
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    if (this.caps.auth.includes('PLAIN') || !this.caps.auth.includes('LOGIN')) {
      return this.command(`AUTH PLAIN ${b64(`\0${username}\0${password}`)}`, 'after AUTH');
    }
    const first = await this.command('AUTH LOGIN', 'after AUTH');
    if (first.code !== 334) return first;
    const second = await this.command(b64(username), 'after AUTH');
    if (second.code !== 334) return second;
    return this.command(b64(password), 'after AUTH');
  }

  /** MAIL, RCPTs, DATA and the body; one write for the envelope when the peer offers PIPELINING. */
  async transaction(tx: MessageTransaction): Promise<TransactionReplies> {
    const mailLine = `MAIL FROM:<${tx.sender}>${tx.mailParams.map((p) => ` ${p}`).join('')}`;
    const rcptLines = tx.recipients.map((r) => `RCPT TO:<${r.address}>${r.params.map((p) => ` ${p}`).join('')}`);
    let mail: ServerReply;
    const rcpts: (ServerReply | null)[] = tx.recipients.map(() => null);
    let data: ServerReply | null = null;
    if (this.caps.pipelining) {
      this.write([mailLine, ...rcptLines, 'DATA'].map((l) => `${l}\r\n`).join(''));
      this.phase = 'after MAIL FROM';
      mail = await this.read(this.timeouts.commandMs);
      this.phase = 'after RCPT TO';
      for (let i = 0; i < rcpts.length; i++) rcpts[i] = await this.read(this.timeouts.commandMs);
      this.phase = 'after DATA';
      data = await this.read(this.timeouts.commandMs);
    } else {
      mail = await this.command(mailLine, 'after MAIL FROM');
      if (mail.code >= 400) return { mail, rcpts, data: null, final: null };
      for (let i = 0; i < rcpts.length; i++) rcpts[i] = await this.command(rcptLines[i]!, 'after RCPT TO');
      if (!rcpts.some((r) => r && r.code < 400)) return { mail, rcpts, data: null, final: null };
      data = await this.command('DATA', 'after DATA');
    }
    if (data.code !== 354) return { mail, rcpts, data, final: null };
    const accepted = mail.code < 400 && rcpts.some((r) => r && r.code < 400);
    if (!accepted && this.protocol === 'lmtp') {
      // RFC 2033 §4.2 wants 503 here; after a 354 nobody knows how many replies an empty message gets
      this.close();
      return { mail, rcpts, data, final: null };
    }
    // A pipelining peer may say 354 although every RCPT failed: end the empty message at once (RFC 2920 §3.1).
    const payload = accepted ? tx.payload : Buffer.from('.\r\n');
    this.phase = 'while sending message body';
    for (let off = 0; off < payload.length; off += BLOCK) await this.writeBlock(payload.subarray(off, off + BLOCK));
    this.phase = 'after end of data';
    if (this.protocol === 'lmtp') {
      const finals = await this.lmtpFinals(mail, rcpts);
      return { mail, rcpts, data, final: finals.finals.find((r) => r !== null) ?? null, lmtp: finals };
    }
    const final = await this.read(this.timeouts.finalMs);
    return { mail, rcpts, data, final: accepted ? final : null };
  }

  /** One reply per accepted RCPT, in order; stops at the first read that fails (timeout, lost, garbage). */
  private async lmtpFinals(mail: ServerReply, rcpts: (ServerReply | null)[]): Promise<{ finals: (ServerReply | null)[]; lost: string | null }> {
    const finals: (ServerReply | null)[] = rcpts.map(() => null);
    for (let i = 0; i < rcpts.length; i++) {
      const r = rcpts[i];
      if (mail.code >= 400 || !r || r.code >= 400) continue;
      try {
        finals[i] = await this.read(this.timeouts.finalMs);
      } catch (err) {
        this.broken = true;
        return { finals, lost: err instanceof Error ? err.message : String(err) };
      }
    }
    return { finals, lost: null };
  }

  private writeBlock(block: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.stream.write(block)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cancel = this.clock.schedule(this.timeouts.dataBlockMs, () => {
        this.fail(new SmtpFailure('timeout', `conversation with ${this.relay} timed out ${this.phase}`));
      });
      const onDrain = (): void => {
        cancel();
        this.stream.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        cancel();
        this.stream.off('drain', onDrain);
        reject(this.failure ?? new SmtpFailure('lost', `lost connection with ${this.relay} ${this.phase}`));
      };
      this.stream.once('drain', onDrain);
      this.stream.once('close', onClose);
    });
  }

  /** RSET before reusing the connection; false when the connection is no good any more. */
  async reset(): Promise<boolean> {
    if (this.broken) return false;
    if (this.replies.length > 0 || this.reader.buffered > 0) {
      // replies nobody asked for: every later reply would be matched to the wrong command
      this.close();
      return false;
    }
    try {
      const r = await this.command('RSET', 'after RSET');
      if (r.code === 250) return true;
    } catch {
      // reported through `broken`
    }
    this.close();
    return false;
  }

  /** QUIT politely (short wait), then close. Never throws. */
  async quit(): Promise<void> {
    if (!this.broken) {
      try {
        this.phase = 'after QUIT';
        this.write('QUIT\r\n');
        await this.read(Math.min(this.timeouts.commandMs, 5000));
      } catch {
        // the peer may close before answering
      }
    }
    this.close();
  }

  close(): void {
    this.broken = true;
    this.detach(this.stream);
    this.stream.on('error', () => {});
    this.stream.destroy();
  }
}

function connectErrorText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'Connection refused';
    case 'ETIMEDOUT': return 'Connection timed out';
    case 'EHOSTUNREACH': return 'No route to host';
    case 'ENETUNREACH': return 'Network is unreachable';
    case 'ECONNRESET': return 'Connection reset by peer';
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    default: return err.message;
  }
}

export { replyText };
