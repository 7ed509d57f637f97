/*
 * One SMTP session over an injected duplex stream (a TCP or TLS socket, or an in-memory pair in tests).
 * Owns the stream, the input queue, reply buffering (RFC 2920: answers in order, written per group),
 * idle timers, the STARTTLS stream swap and the connect/disconnect log lines. Bytes are handed, by phase,
 * to the line reader + dispatcher, the DATA machine or the BDAT reader; reading pauses while a command
 * runs, so memory stays bounded by one chunk plus one line or one message within the size limit.
 * Errors on the stream end the session quietly; nothing a client sends can throw out of here.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log/logger.js';
import { LineReader } from '../../net/line-reader.js';
import { SessionStream } from '../../net/session-stream.js';
import { formatReply, reply, type Reply } from '../proto/reply.js';
import type { ClientInfo, SmtpServices } from '../services.js';
import type { AuthLimiter } from '../../auth/limiter.js';
import type { ServerClock } from '../../net/clock.js';
import { dispatchLine } from './dispatcher.js';
import { greeting, shuttingDown, timeoutExceeded, tooManyErrors } from './replies.js';
import { SessionStats } from './stats.js';
import { tempfailAt } from './tempfail.js';
import type { Helo, PeerInfo, RejectFields, SessionContext, SessionSettings, SessionState } from './types.js';
import { consumeBdat } from './verbs/bdat.js';
import { consumeData } from './verbs/data.js';

/** How long a closing client may take to read our last line. */
const LINGER_MS = 5000;
/** Pending reply text that is written even in the middle of a pipelined group. */
const OUT_HIGH_WATER = 16 * 1024;

export interface SessionOptions {
  stream: Duplex;
  peer: PeerInfo;
  /** the stream is already TLS (implicit TLS listener) */
  tls: boolean;
  settings: SessionSettings;
  services: SmtpServices;
  /** bound to this connection: carries proto, client and a session id in every line */
  logger: Logger;
  clock: ServerClock;
  authLimiter: AuthLimiter;
  /** STARTTLS handshake on the given stream; resolves with the secure stream once established */
  upgradeTls?: (stream: Duplex) => Promise<Duplex>;
  newId: () => string;
  onClose?: (session: Session) => void;
}

export class Session implements SessionContext {
  state: SessionState = { phase: 'fresh' };
  tls: boolean;
  authUser: string | null = null;
  draining = false;
  readonly settings: SessionSettings;
  readonly services: SmtpServices;
  readonly peer: PeerInfo;
  readonly log: Logger;
  readonly clock: ServerClock;
  readonly authLimiter: AuthLimiter;
  private readonly io: SessionStream;
  private get stream(): Duplex {
    return this.io.current;
  }
  private readonly reader: LineReader;
  private readonly stats = new SessionStats();
  private inbox: Buffer[] = [];
  private offset = 0;
  private out = '';
  private pumping = false;
  private ended = false;
  private closing = false;
  private finished = false;
  private errors = 0;
  private verb = 'CONNECT';
  private lastCode = 0;
  private cancelTimer: (() => void) | null = null;
  private cancelLinger: (() => void) | null = null;

  constructor(private readonly options: SessionOptions) {
    this.tls = options.tls;
    this.settings = options.settings;
    this.services = options.services;
    this.peer = options.peer;
    this.log = options.logger;
    this.clock = options.clock;
    this.authLimiter = options.authLimiter;
    this.reader = new LineReader(options.settings.maxCommandLine);
    this.io = new SessionStream(options.stream, { data: this.onData, end: this.onEnd, error: this.onError, close: this.onStreamClose });
  }

  start(): void {
    this.io.listen();
    this.log.info({ port: this.peer.port, listener: this.settings.listener, tls: this.tls }, 'connect');
    // smtp.tempfail at connect: a 421 greeting, then the client goes elsewhere or comes back later
    const maintenance = tempfailAt(this, 'connect');
    if (maintenance) return this.close(maintenance);
    this.reply(greeting(this.settings.hostname, this.settings.lmtp));
    this.idle();
  }

  get phase(): SessionState['phase'] {
    return this.state.phase;
  }

  /** Shutdown: idle sessions get 421 now, a message being received is finished first. */
  drain(): void {
    this.draining = true;
    if (!this.pumping) this.idle();
  }

  destroy(): void {
    this.closing = true;
    this.stream.destroy();
    this.finish();
  }

  // --- SessionContext -------------------------------------------------------------------------------

  reply(r: Reply, fields: RejectFields = {}): void {
    if (this.closing) return;
    this.out += formatReply(r);
    this.lastCode = r.code;
    if (r.code >= 400) {
      this.log.info({ status: 'reject', verb: this.verb, code: r.code, enhanced: r.enhanced, reply: r.lines.join(' '), ...fields }, 'reject');
    }
  }

  flush(): void {
    if (this.out === '') return;
    if (this.stream.writable) this.stream.write(this.out);
    this.out = '';
  }

  close(last?: Reply): void {
    if (this.closing) return;
    if (last) this.reply(last);
    this.flush();
    this.closing = true;
    this.cancelIdle();
    this.stream.end();
    // read (and drop) whatever still comes, so the peer's end is seen and the stream can close
    this.stream.resume();
    this.cancelLinger = this.clock.schedule(LINGER_MS, () => this.destroy());
  }

  quit(last: Reply): void {
    if (this.closing) return;
    // Bytes after QUIT (in this chunk or a later one): keep reading them away so the kernel does not
    // answer them with a reset that could destroy our 221 before the client reads it.
    if (!this.onlyQuitPending()) return this.close(last);
    this.reply(last);
    this.flush();
    this.closing = true;
    this.cancelIdle();
    // Nothing more is read: a client that resets the connection after our 221 (smtp-source does) costs
    // no error object, and the socket is released once the 221 and our FIN are with the kernel.
    this.stream.end(() => this.destroy());
    this.cancelLinger = this.clock.schedule(LINGER_MS, () => this.destroy());
  }

  /** The QUIT line being handled is the last input we hold. */
  private onlyQuitPending(): boolean {
    return this.inbox.length === 1 && this.offset >= this.inbox[0]!.length;
  }

  protocolError(): void {
    this.errors++;
    if (this.errors >= this.settings.maxErrors) this.close(tooManyErrors(this.settings.hostname));
  }

  setLineLimit(octets: number): void {
    this.reader.limit = octets;
  }

  startTls(): void {
    const upgrade = this.options.upgradeTls;
    if (!upgrade) return this.close(reply(454, '4.7.0', 'TLS not available due to local problem'));
    const plain = this.io.release();
    // RFC 3207 §4.2: whatever the client pipelined after STARTTLS is thrown away, never interpreted.
    this.inbox = [];
    this.offset = 0;
    this.reader.reset();
    this.state = { phase: 'tls' };
    this.armTimer();
    upgrade(plain).then(
      (secure) => this.secured(secure),
      (err: unknown) => {
        this.log.info({ err, status: 'tls_failed' }, 'TLS handshake failed');
        this.destroy();
      },
    );
  }

  clientInfo(helo: Helo | null): ClientInfo {
    return {
      address: this.peer.address,
      port: this.peer.port,
      helo: helo?.name ?? null,
      tls: this.tls,
      authUser: this.authUser,
      trusted: this.peer.trusted,
      submission: this.settings.submission,
    };
  }

  newId(): string {
    return this.options.newId();
  }

  // --- stream and input ----------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.cancelIdle();
    this.inbox.push(chunk);
    this.stream.pause();
    void this.pump();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    if (!this.pumping) this.idle();
  };

  private readonly onError = (err: Error): void => {
    this.log.debug({ err }, 'connection error');
    this.destroy();
  };

  private readonly onStreamClose = (): void => this.finish();

  private secured(secure: Duplex): void {
    if (this.state.phase !== 'tls') {
      secure.destroy();
      return;
    }
    this.io.replace(secure);
    this.tls = true;
    this.authUser = null;
    this.state = { phase: 'fresh' };
    this.log.info({ status: 'tls' }, 'TLS established');
    this.idle();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closing && this.inbox.length > 0) {
        await this.step();
        if (this.out.length > OUT_HIGH_WATER) this.flush();
        if (this.stream.writableNeedDrain) await this.drained();
        if (this.stream.writableNeedDrain) return this.destroy();
      }
    } catch (err) {
      this.log.error({ err }, 'session failed');
      this.close(reply(421, '4.3.0', `${this.settings.hostname} Error: internal error`));
    } finally {
      this.pumping = false;
    }
    this.idle();
  }

  private async step(): Promise<void> {
    const chunk = this.inbox[0]!;
    if (this.offset >= chunk.length) {
      this.inbox.shift();
      this.offset = 0;
      return;
    }
    const state = this.state;
    switch (state.phase) {
      case 'data':
        this.offset = await consumeData(this, state, chunk, this.offset);
        return;
      case 'bdat':
        this.offset = await consumeBdat(this, state, chunk, this.offset);
        return;
      case 'tls':
      case 'closed':
        this.inbox = [];
        this.offset = 0;
        return;
      default:
        return this.stepLine(chunk);
    }
  }

  private async stepLine(chunk: Buffer): Promise<void> {
    const { event, next } = this.reader.read(chunk, this.offset);
    this.offset = next;
    if (!event) return;
    this.lastCode = 0;
    // an AUTH response line is a credential: it must never reach the log as a "verb"
    if (this.state.phase === 'auth') this.verb = 'AUTH';
    else this.verb = event.kind === 'line' ? (event.text.split(' ', 1)[0] ?? '').toUpperCase().slice(0, 12) : 'UNKNOWN';
    const dispatched = await dispatchLine(this, event);
    this.verb = dispatched.verb;
    this.stats.count(dispatched.verb, this.lastCode < 400);
    if (dispatched.endsGroup) this.flush();
  }

  /** Waits until the client reads our replies (or the command timeout passes: then the caller gives up). */
  private drained(): Promise<void> {
    return this.io.drained(this.clock, this.settings.commandTimeoutMs);
  }

  /** Waiting for the client again: write what is pending, then apply end/shutdown or arm the timer. */
  private idle(): void {
    if (this.closing) return;
    this.flush();
    const phase = this.state.phase;
    if (phase === 'tls') return;
    if (this.ended) {
      if (phase === 'data' || phase === 'bdat') this.log.info({ status: 'lost', phase }, 'lost connection during message transfer');
      return this.close();
    }
    if (this.draining && phase !== 'data' && phase !== 'bdat') return this.close(shuttingDown(this.settings.hostname));
    this.armTimer();
    this.stream.resume();
  }

  private armTimer(): void {
    this.cancelIdle();
    const phase = this.state.phase;
    const ms = phase === 'data' || phase === 'bdat' ? this.settings.dataTimeoutMs : this.settings.commandTimeoutMs;
    this.cancelTimer = this.clock.schedule(ms, () => this.onTimeout());
  }

  private cancelIdle(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private onTimeout(): void {
    this.cancelTimer = null;
    if (this.pumping || this.closing) return;
    this.log.info({ status: 'timeout', phase: this.state.phase }, 'timeout');
    if (this.state.phase === 'tls') return this.destroy();
    this.close(timeoutExceeded(this.settings.hostname));
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    this.cancelIdle();
    this.cancelLinger?.();
    const phase = this.state.phase;
    this.state = { phase: 'closed' };
    this.log.info({ commands: this.stats.summary(), phase }, 'disconnect');
    this.options.onClose?.(this);
  }
}
