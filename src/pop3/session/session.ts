/*
 * One POP3 session over an injected duplex stream (TCP, TLS, or an in-memory pair in tests). Owns the
 * stream, the input queue, response buffering (pipelined commands are answered in order), the idle
 * timer, the STLS stream swap, and the end of the session: a session that ends without QUIT deletes
 * nothing, applies the \Seen flags of what was retrieved and releases the maildrop lock before its one
 * log line. Reading pauses while a command runs, so memory stays bounded by one chunk plus one line, the
 * answers held for one writev (CORK_BYTES) and the maildrop's read-ahead. Stream errors end the session
 * quietly; nothing a client sends throws out of here.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log/logger.js';
import type { ServerClock } from '../../net/clock.js';
import { LineReader } from '../../net/line-reader.js';
import { SessionStream } from '../../net/session-stream.js';
import { err, ok } from '../proto/reply.js';
import { dispatchLine } from './dispatcher.js';
import { sessionSummary } from './transaction.js';
import type { EndStatus, PeerInfo, Pop3Services, Pop3Settings, SessionContext, SessionState } from './types.js';

/** How long a closing client may take to read our last line. */
const LINGER_MS = 5000;
/** Pending response text written even in the middle of a pipelined group. */
const OUT_HIGH_WATER = 16 * 1024;
/**
 * Answers to pipelined commands are held (stream.cork) and leave in one writev when the client's input
 * runs out, before waiting on anything, or once this much is held: few system calls and segments for a
 * burst of RETRs, memory bounded by this plus the read-ahead.
 */
const CORK_BYTES = 256 * 1024;

export interface Pop3SessionOptions {
  stream: Duplex;
  peer: PeerInfo;
  /** the stream is already TLS (implicit TLS listener) */
  tls: boolean;
  settings: Pop3Settings;
  services: Pop3Services;
  /** bound to this connection: carries proto, client and a session id in every line */
  logger: Logger;
  clock: ServerClock;
  /** STLS handshake on the given stream; resolves with the secure stream once established */
  upgradeTls?: (stream: Duplex) => Promise<Duplex>;
  onClose?: (session: Pop3Session) => void;
}

export class Pop3Session implements SessionContext {
  state: SessionState = { phase: 'authorization', user: null };
  tls: boolean;
  closing = false;
  summary: Record<string, unknown> | null = null;
  readonly settings: Pop3Settings;
  readonly services: Pop3Services;
  readonly peer: PeerInfo;
  readonly log: Logger;
  readonly clock: ServerClock;
  private readonly io: SessionStream;
  private get stream(): Duplex {
    return this.io.current;
  }
  private readonly reader: LineReader;
  private inbox: Buffer[] = [];
  private offset = 0;
  private out = '';
  private corked = false;
  private pumping: Promise<void> | null = null;
  private ended = false;
  private draining = false;
  private finished = false;
  private badCommands = 0;
  private commands = 0;
  private endStatus: EndStatus = 'disconnected';
  private cancelTimer: (() => void) | null = null;
  private cancelLinger: (() => void) | null = null;

  constructor(private readonly options: Pop3SessionOptions) {
    this.tls = options.tls;
    this.settings = options.settings;
    this.services = options.services;
    this.peer = options.peer;
    this.log = options.logger;
    this.clock = options.clock;
    this.reader = new LineReader(options.settings.maxCommandLine);
    this.io = new SessionStream(options.stream, { data: this.onData, end: this.onEnd, error: this.onError, close: this.onStreamClose });
  }

  start(): void {
    this.io.listen();
    this.log.info({ port: this.peer.port, listener: this.settings.listener, tls: this.tls }, 'connect');
    this.send(ok(`${this.settings.hostname} Cartero POP3 server ready`));
    this.idle();
  }

  get phase(): SessionState['phase'] {
    return this.state.phase;
  }

  /** Shutdown: an idle session is closed now (no UPDATE), a running command finishes first. */
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

  send(text: string): void {
    if (this.closing) return;
    this.out += text;
  }

  async sendBody(head: string, chunks: Iterable<Buffer>): Promise<boolean> {
    this.send(head);
    // the status line and the body leave together (one writev), not as a segment of their own
    this.cork();
    this.writeOut();
    for (const chunk of chunks) {
      if (this.closing || !this.stream.writable) return false;
      this.stream.write(chunk);
      if (this.stream.writableLength >= CORK_BYTES) {
        if (!(await this.writeNow())) return false;
        this.cork();
      }
    }
    return !this.closing;
  }

  close(last: string | undefined, status: EndStatus): void {
    if (this.closing) return;
    this.endStatus = status;
    if (last) this.send(last);
    this.flush();
    this.closing = true;
    this.cancelIdle();
    this.stream.end();
    // read (and drop) whatever still comes, so the peer's end is seen and the stream can close
    this.stream.resume();
    this.cancelLinger = this.clock.schedule(LINGER_MS, () => this.destroy());
  }

  badCommand(): void {
    this.badCommands++;
    if (this.badCommands >= this.settings.maxBadCommands) this.close(err('Too many bad commands, closing connection'), 'too_many_errors');
  }

  setLineLimit(octets: number): void {
    this.reader.limit = octets;
  }

  plaintextAllowed(): boolean {
    return this.tls || this.peer.loopback;
  }

  startTls(): void {
    const upgrade = this.options.upgradeTls;
    if (!upgrade) return this.close(err('TLS not available', 'SYS/TEMP'), 'error');
    this.flush();
    const plain = this.io.release();
    // RFC 2595 §4: what the client pipelined after STLS is thrown away, never interpreted.
    this.inbox = [];
    this.offset = 0;
    this.reader.reset();
    this.state = { phase: 'tls' };
    upgrade(plain).then(
      (secure) => this.secured(secure),
      (e: unknown) => {
        this.log.info({ err: e, status: 'tls_failed' }, 'TLS handshake failed');
        this.destroy();
      },
    );
  }

  // --- stream and input ----------------------------------------------------------------------------

  flush(): void {
    this.writeOut();
    this.uncork();
  }

  /** Queued response text into the stream (held there while corked). */
  private writeOut(): void {
    if (this.out === '') return;
    if (this.stream.writable) this.stream.write(this.out);
    this.out = '';
  }

  private cork(): void {
    if (this.corked || !this.stream.writable) return;
    this.stream.cork();
    this.corked = true;
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.stream.uncork();
  }

  /**
   * Sends what is held and waits until the client has read it, at most the idle timeout; false (and the
   * session ends) when it did not. Returns at once when the kernel took it all.
   */
  private async writeNow(): Promise<boolean> {
    this.flush();
    if (this.stream.writableLength === 0 || !this.stream.writableNeedDrain) return !this.closing;
    await this.drained();
    if (this.stream.writableNeedDrain) {
      this.log.info({ status: 'timeout', phase: this.state.phase }, 'client stopped reading');
      this.endStatus = 'timeout';
      this.destroy();
      return false;
    }
    return !this.closing;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.cancelIdle();
    this.inbox.push(chunk);
    this.stream.pause();
    if (!this.pumping) this.pumping = this.pump();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    if (!this.pumping) this.idle();
  };

  private readonly onError = (e: Error): void => {
    this.log.debug({ err: e }, 'connection error');
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
    this.state = { phase: 'authorization', user: null };
    this.log.info({ status: 'tls' }, 'TLS established');
    this.idle();
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closing && this.inbox.length > 0) {
        this.cork();
        await this.step();
        if (this.out.length > OUT_HIGH_WATER) this.writeOut();
        if (this.stream.writableLength >= CORK_BYTES || (this.stream.writableNeedDrain && !this.corked)) {
          if (!(await this.writeNow())) break;
        }
      }
    } catch (e) {
      this.log.error({ err: e }, 'session failed');
      this.close(err('Internal error, closing connection', 'SYS/TEMP'), 'error');
    } finally {
      this.pumping = null;
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
    if (this.state.phase === 'tls' || this.state.phase === 'closed') {
      this.inbox = [];
      this.offset = 0;
      return;
    }
    const { event, next } = this.reader.read(chunk, this.offset);
    this.offset = next;
    if (!event) return;
    this.commands++;
    await dispatchLine(this, event);
  }

  /** Waits until the client reads what we wrote, or the idle timeout passes. */
  private drained(): Promise<void> {
    return this.io.drained(this.clock, this.settings.idleTimeoutMs);
  }

  /** Waiting for the client again: write what is pending, then apply end/shutdown or arm the timer. */
  private idle(): void {
    if (this.closing) return;
    this.flush();
    if (this.state.phase === 'tls') return;
    if (this.ended) return this.close(undefined, 'disconnected');
    if (this.draining) return this.close(err('Server shutting down', 'SYS/TEMP'), 'shutdown');
    this.cancelIdle();
    this.cancelTimer = this.clock.schedule(this.settings.idleTimeoutMs, () => this.onTimeout());
    this.stream.resume();
  }

  private cancelIdle(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private onTimeout(): void {
    this.cancelTimer = null;
    if (this.pumping || this.closing) return;
    this.log.info({ status: 'timeout', phase: this.state.phase }, 'timeout');
    this.close(err('Disconnected for inactivity'), 'timeout');
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    this.cancelIdle();
    this.cancelLinger?.();
    const state = this.state;
    this.state = { phase: 'closed' };
    void this.wrapUp(state);
  }

  /** After the last command finished: no UPDATE without QUIT, \Seen kept, lock released, one log line. */
  private async wrapUp(state: SessionState): Promise<void> {
    await this.pumping?.catch(() => undefined);
    if (state.phase === 'transaction') {
      const drop = state.drop;
      try {
        await drop.abandon();
      } catch (e) {
        this.log.error({ err: e, user: drop.account.address }, 'cannot set \\Seen flags at disconnect');
      } finally {
        await drop.close();
      }
      this.summary = sessionSummary(drop, 0);
    }
    const fields = { ...this.summary, status: this.endStatus, commands: this.commands };
    this.log.info(fields, this.summary ? 'logout' : 'disconnect');
    this.options.onClose?.(this);
  }
}
