/*
 * One IMAP session over an injected duplex stream (TCP, TLS, or an in-memory pair in tests). Owns the
 * stream, the command reader, output buffering with back-pressure, the autologout timer, the STARTTLS
 * stream swap, change-feed subscriptions and the connect/login/logout log lines. Commands run one at a
 * time in arrival order (so pipelined responses stay in order); reading pauses while one runs, so memory
 * is bounded by one chunk plus one command. Nothing a client sends can throw out of here.
 */
import type { Duplex } from 'node:stream';
import type { Authenticator } from '../../auth/authenticate.js';
import type { AuthLimiter } from '../../auth/limiter.js';
import type { Logger } from '../../log/logger.js';
import type { ServerClock } from '../../net/clock.js';
import { isStoreError, type Account, type Store } from '../../store/index.js';
import { joinPieces } from '../../net/join-pieces.js';
import { SessionStream } from '../../net/session-stream.js';
import { UserSlots } from '../../net/user-slots.js';
import { HeaderCache } from '../header-cache.js';
import { CommandReader, type ReaderEvent } from '../proto/reader.js';
import { ImapParseError, tokenize, type ParsedCommand } from '../proto/tokens.js';
import { COMMANDS } from './dispatch.js';
import type { Enableable, ImapSettings, ImapState, PeerInfo, SessionContext, SessionCounters, Tagged } from './types.js';
import type { MailboxView } from './view.js';

const LINGER_MS = 5000;
const OUT_HIGH_WATER = 64 * 1024;

export interface ImapSessionOptions {
  stream: Duplex;
  peer: PeerInfo;
  tls: boolean;
  settings: ImapSettings;
  store: Store;
  authenticate: Authenticator;
  authLimiter: AuthLimiter;
  userLimiter: AuthLimiter;
  logger: Logger;
  clock: ServerClock;
  upgradeTls?: (stream: Duplex) => Promise<Duplex>;
  onClose?: (session: ImapSession) => void;
  /** the server's shared cache; default: one of the session's own */
  headerCache?: HeaderCache;
  /** the server's count of logged-in sessions per user; default: one of the session's own */
  userSlots?: UserSlots;
}

export class ImapSession implements SessionContext {
  state: ImapState = 'notauth';
  account: Account | null = null;
  view: MailboxView | null = null;
  readonly enabled = new Set<Enableable>();
  condstore = false;
  tls: boolean;
  readonly settings: ImapSettings;
  readonly store: Store;
  readonly log: Logger;
  readonly clock: ServerClock;
  readonly peer: PeerInfo;
  readonly authenticate: Authenticator;
  readonly authLimiter: AuthLimiter;
  readonly userLimiter: AuthLimiter;
  readonly counters: SessionCounters = { commands: 0, fetched: 0, fetchedBytes: 0, appended: 0, expunged: 0 };
  readonly headerCache: HeaderCache;

  private readonly io: SessionStream;
  private get stream(): Duplex {
    return this.io.current;
  }
  private readonly userSlots: UserSlots;
  private readonly reader: CommandReader;
  private inbox: Buffer[] = [];
  private offset = 0;
  private out: (string | Buffer)[] = [];
  private outBytes = 0;
  private ended = false;
  private closing = false;
  private finished = false;
  private draining = false;
  private errors = 0;
  private wantTls = false;
  private waiter: (() => void) | null = null;
  private cancelTimer: (() => void) | null = null;
  private cancelLinger: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;
  private idleWake: (() => void) | null = null;
  private running = false;

  constructor(private readonly options: ImapSessionOptions) {
    this.tls = options.tls;
    this.settings = options.settings;
    this.store = options.store;
    this.log = options.logger;
    this.clock = options.clock;
    this.peer = options.peer;
    this.authenticate = options.authenticate;
    this.authLimiter = options.authLimiter;
    this.userLimiter = options.userLimiter;
    this.headerCache = options.headerCache ?? new HeaderCache(10_000);
    this.userSlots = options.userSlots ?? new UserSlots();
    const s = options.settings;
    this.reader = new CommandReader({ maxLine: s.maxCommandLine, literalLimit: (cmd) => (cmd === 'APPEND' ? s.appendLimit : s.maxLiteral) });
    this.io = new SessionStream(options.stream, { data: this.onData, end: this.onEnd, error: this.onError, close: this.onStreamClose });
  }

  get utf8(): boolean {
    return this.enabled.has('UTF8=ACCEPT');
  }

  start(): void {
    this.listen();
    this.log.info({ port: this.peer.port, listener: this.settings.listener, tls: this.tls }, 'connect');
    this.send(`* OK [CAPABILITY ${this.capabilities()}] ${this.settings.hostname} Cartero IMAP ready\r\n`);
    void this.run();
  }

  /** Shutdown: an idle session (or one in IDLE) gets BYE now; a running command finishes first. */
  drain(): void {
    this.draining = true;
    if (this.waiter) this.waiter();
    this.idleWake?.();
  }

  destroy(): void {
    this.closing = true;
    this.stream.destroy();
    this.finish();
  }

  // --- SessionContext -------------------------------------------------------------------------------

  send(data: string | Buffer): void {
    if (this.closing) return;
    this.out.push(data);
    this.outBytes += data.length;
  }

  async flush(): Promise<void> {
    if (this.out.length > 0 && this.stream.writable) this.stream.write(this.out.length === 1 ? this.out[0]! : joinPieces(this.out));
    this.out = [];
    this.outBytes = 0;
    if (this.stream.writableNeedDrain) await this.drained();
  }

  readRawLine(): Promise<string | null> {
    this.reader.expectRawLine();
    return this.nextEvent().then((ev) => (ev && ev.kind === 'raw' ? ev.text : null));
  }

  requestTls(): void {
    this.wantTls = true;
  }

  capabilities(): string {
    const caps = ['IMAP4rev1', 'IMAP4rev2'];
    if (this.state === 'notauth') {
      if (this.settings.starttls && !this.tls) caps.push('STARTTLS');
      if (this.plaintextLoginAllowed()) caps.push('AUTH=PLAIN', 'SASL-IR');
      else caps.push('LOGINDISABLED');
    }
    caps.push('LITERAL+', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT', 'UIDPLUS', 'MOVE', 'CHILDREN', 'LIST-EXTENDED', 'LIST-STATUS');
    caps.push('SPECIAL-USE', 'CREATE-SPECIAL-USE', 'CONDSTORE', 'QRESYNC', 'ESEARCH', 'SEARCHRES', 'QUOTA', 'QUOTA=RES-STORAGE');
    caps.push(`APPENDLIMIT=${this.settings.appendLimit}`, 'BINARY', 'MULTIAPPEND', 'UTF8=ACCEPT', 'STATUS=SIZE');
    return caps.join(' ');
  }

  plaintextLoginAllowed(): boolean {
    return this.tls || this.peer.loopback;
  }

  async sync(expunge: boolean): Promise<void> {
    const view = this.view;
    if (!view || this.state !== 'selected') return;
    if (!view.dirty) return;
    const lines = await view.collect(this.store, { expunge, condstore: this.condstore, qresync: this.enabled.has('QRESYNC') });
    for (const l of lines) this.send(l);
  }

  /** Subscribes the selected view to the change feed (replacing a previous subscription). */
  watch(view: MailboxView | null): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (!view) return;
    this.unsubscribe = this.store.changes.subscribe(view.id, (signal) => {
      if (signal.highestModseq > view.modseq || signal.highestModseq === 0) {
        view.dirty = true;
        this.idleWake?.();
      }
    });
  }

  /** IDLE registers here to hear of changes (and of shutdown) while it waits for DONE. */
  onWake(fn: (() => void) | null): void {
    this.idleWake = fn;
  }

  loggedIn(account: Account, mechanism: string): boolean {
    if (!this.userSlots.acquire(account.address, this.settings.maxConnectionsPerUser)) {
      this.log.warn({ user: account.address, client: this.peer.address, mechanism, status: 'refused', reason: 'too many sessions for the user' }, 'login');
      return false;
    }
    this.account = account;
    this.state = 'auth';
    this.log.info({ user: account.address, client: this.peer.address, mechanism, status: 'ok', tls: this.tls }, 'login');
    return true;
  }

  isDraining(): boolean {
    return this.draining;
  }

  // --- main loop -----------------------------------------------------------------------------------

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const ev = await this.nextEvent();
        if (!ev || this.closing) break;
        await this.handle(ev);
        if (this.closing) break;
        if (this.wantTls) {
          this.wantTls = false;
          await this.flush();
          if (!(await this.upgrade())) break;
        }
      }
    } catch (err) {
      this.log.error({ err }, 'session failed');
      this.send('* BYE Internal server error\r\n');
      this.close();
    } finally {
      this.running = false;
    }
    if (!this.closing) this.close();
  }

  private async handle(ev: ReaderEvent): Promise<void> {
    if (ev.kind === 'continue') {
      this.send('+ Ready for literal data\r\n');
      await this.flush();
      return;
    }
    if (ev.kind === 'raw') return; // a raw line nobody asked for cannot happen; ignore defensively
    if (ev.kind === 'error') {
      const tag = ev.tag ?? '*';
      if (ev.tooBig) this.send(`${tag} NO [TOOBIG] ${ev.text}\r\n`);
      else this.send(`${tag} BAD ${ev.text}\r\n`);
      this.log.info({ status: 'bad', reason: ev.text }, 'bad command');
      if (ev.fatal) return this.close('* BYE Protocol error: literal too big\r\n');
      return this.countError();
    }
    let cmd: ParsedCommand;
    try {
      cmd = tokenize(ev.parts);
    } catch (err) {
      if (!(err instanceof ImapParseError)) throw err;
      this.send(`${err.tag ?? '*'} BAD ${err.message}\r\n`);
      return this.countError();
    }
    await this.execute(cmd);
  }

  private countError(): void {
    this.errors++;
    if (this.errors >= this.settings.maxErrors) this.close('* BYE Too many errors\r\n');
  }

  private async execute(cmd: ParsedCommand): Promise<void> {
    this.counters.commands++;
    if (this.draining) return this.close('* BYE Server shutting down\r\n');
    const spec = COMMANDS[cmd.name];
    let result: Tagged;
    if (!spec) {
      result = { status: 'BAD', text: `Unknown command ${cmd.name.slice(0, 30)}` };
    } else if (!spec.states.includes(this.state)) {
      result = { status: 'BAD', text: `${cmd.name} not allowed ${stateText(this.state)}` };
    } else {
      try {
        if (spec.view && this.view) await this.view.load(this.store);
        result = await spec.run(this, cmd);
      } catch (err) {
        result = this.failure(err);
      }
    }
    if (this.state === 'selected' && result.status !== 'BAD' && !this.closing) {
      try {
        await this.sync(spec?.expungeAfter !== false);
      } catch (err) {
        this.log.warn({ err }, 'mailbox sync failed');
      }
    }
    if (result.status === 'BAD') this.errors++;
    const code = result.code ? `[${result.code}] ` : '';
    this.send(`${cmd.tag} ${result.status} ${code}${result.text}\r\n`);
    if (this.state === 'logout') return this.close();
    if (result.status === 'BAD' && this.errors >= this.settings.maxErrors) return this.close('* BYE Too many errors\r\n');
    if (this.outBytes > OUT_HIGH_WATER || this.inbox.length === 0) await this.flush();
  }

  private failure(err: unknown): Tagged {
    if (err instanceof ImapParseError) return { status: 'BAD', text: err.message, ...(err.code ? { code: err.code } : {}) };
    if (isStoreError(err)) {
      switch (err.kind) {
        case 'not_found':
          return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox or message' };
        case 'exists':
          return { status: 'NO', code: 'ALREADYEXISTS', text: 'Mailbox already exists' };
        case 'over_quota':
          return { status: 'NO', code: 'OVERQUOTA', text: 'Quota exceeded' };
        case 'unavailable':
          return { status: 'NO', code: 'UNAVAILABLE', text: 'Store temporarily unavailable, try again' };
        case 'invalid':
          return { status: 'NO', code: 'CANNOT', text: 'Invalid request' };
        default:
          break;
      }
    }
    this.log.error({ err }, 'command failed');
    return { status: 'NO', code: 'SERVERBUG', text: 'Internal error' };
  }

  // --- input ---------------------------------------------------------------------------------------

  /** The next reader event, reading from the stream as needed; null at end of input or on close. */
  private async nextEvent(): Promise<ReaderEvent | null> {
    for (;;) {
      if (this.closing) return null;
      while (this.inbox.length > 0) {
        const chunk = this.inbox[0]!;
        const { event, next } = this.reader.read(chunk, this.offset);
        this.offset = next;
        if (next >= chunk.length) {
          this.inbox.shift();
          this.offset = 0;
        }
        if (event) return event;
      }
      if (this.ended) {
        if (this.reader.midCommand) this.log.info({ status: 'lost' }, 'client went away in the middle of a command');
        return null;
      }
      await this.flush();
      if (this.closing) return null;
      if (this.draining && this.idleWake === null) {
        this.close('* BYE Server shutting down\r\n');
        return null;
      }
      await this.waitData();
    }
  }

  private waitData(): Promise<void> {
    return new Promise((resolve) => {
      this.armTimer();
      this.waiter = () => {
        this.waiter = null;
        this.cancelIdleTimer();
        resolve();
      };
      this.stream.resume();
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.inbox.push(chunk);
    this.stream.pause();
    this.waiter?.();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.waiter?.();
  };

  private readonly onError = (err: Error): void => {
    this.log.debug({ err }, 'connection error');
    this.destroy();
  };

  private readonly onStreamClose = (): void => this.finish();

  /** Input is read on demand (run() resumes the stream when it waits for a command). */
  private listen(): void {
    this.io.listen();
    this.stream.pause();
  }

  private async upgrade(): Promise<boolean> {
    const upgrade = this.options.upgradeTls;
    if (!upgrade) return false;
    const plain = this.io.release();
    // RFC 9051 §6.2.1: anything pipelined after STARTTLS is discarded, never interpreted
    this.inbox = [];
    this.offset = 0;
    this.reader.reset();
    try {
      const secure = await upgrade(plain);
      this.io.replace(secure);
      this.stream.pause();
      this.tls = true;
      this.log.info({ status: 'tls' }, 'TLS established');
      return true;
    } catch (err) {
      this.log.info({ err, status: 'tls_failed' }, 'TLS handshake failed');
      this.destroy();
      return false;
    }
  }

  private drained(): Promise<void> {
    // a client that stops reading is treated like an idle one
    return this.io.drained(this.clock, this.settings.autologoutMs, () => this.destroy());
  }

  private armTimer(): void {
    this.cancelIdleTimer();
    const ms = this.state === 'notauth' ? this.settings.preauthTimeoutMs : this.settings.autologoutMs;
    this.cancelTimer = this.clock.schedule(ms, () => {
      this.cancelTimer = null;
      this.log.info({ status: 'timeout', state: this.state }, 'autologout');
      this.close('* BYE Autologout; idle for too long\r\n');
      this.waiter?.();
    });
  }

  private cancelIdleTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /** Sends `last` (a BYE) if given, flushes and closes the connection. */
  close(last?: string): void {
    if (this.closing) return;
    if (last) this.send(last);
    if (this.stream.writable) for (const piece of this.out) this.stream.write(piece);
    this.out = [];
    this.closing = true;
    this.cancelIdleTimer();
    this.stream.end();
    this.stream.resume();
    this.cancelLinger = this.clock.schedule(LINGER_MS, () => this.destroy());
    this.waiter?.();
    this.idleWake?.();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    this.cancelIdleTimer();
    this.cancelLinger?.();
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.waiter?.();
    this.idleWake?.();
    if (this.account) {
      this.userSlots.release(this.account.address);
      this.log.info({ user: this.account.address, client: this.peer.address, ...this.counters }, 'logout');
    }
    this.log.info({ commands: this.counters.commands, state: this.state }, 'disconnect');
    this.options.onClose?.(this);
  }
}

function stateText(state: ImapState): string {
  switch (state) {
    case 'notauth':
      return 'before login';
    case 'auth':
      return 'without a selected mailbox';
    case 'selected':
      return 'with a mailbox selected';
    case 'logout':
      return 'after LOGOUT';
  }
}
