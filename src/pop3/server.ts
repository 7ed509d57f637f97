/*
 * The POP3 server: turns sockets accepted by src/net/listeners.ts into sessions and holds what sessions
 * share: settings, the TLS context (pop3.tls, loaded once and on reload), the per-address login failure
 * counters, the maildrop locks, and the list of live sessions for a graceful drain. Reaches data only
 * through the store API. A bad TLS file stops creation with Pop3SetupError; on reload it is logged and
 * the running context kept. Socket errors never escape a session.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import { createAuthenticator, type Authenticator } from '../auth/authenticate.js';
import { AuthLimiter } from '../auth/limiter.js';
import { configuredListeners, type Config, type ListenerSettings } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import { LiveSessions } from '../net/live-sessions.js';
import { closeWith, type ConnectionHandler, type ConnectionInfo } from '../net/listeners.js';
import { handshake, isLoopback, loadTlsFiles, TlsSetupError } from '../net/tls.js';
import type { Store } from '../store/index.js';
import { LocalMaildropLocks, type MaildropLocks } from './lock.js';
import { AUTH_LINE_LIMIT, COMMAND_LINE_LIMIT } from './proto/command.js';
import { err } from './proto/reply.js';
import { Pop3Session } from './session/session.js';
import type { Pop3SessionLimits, Pop3Settings } from './session/types.js';

export interface Pop3Limits extends Pop3SessionLimits {
  /** login failures per client address within the window before the client is disconnected */
  maxAuthFailures: number;
  authFailureWindowMs: number;
  /** TLS handshake (implicit or STLS) must finish within this */
  tlsHandshakeTimeoutMs: number;
}

export const DEFAULT_POP3_LIMITS: Pop3Limits = {
  idleTimeoutMs: 600_000,
  authFailureDelayMs: 1000,
  maxBadCommands: 10,
  maxCommandLine: COMMAND_LINE_LIMIT,
  maxAuthLine: AUTH_LINE_LIMIT,
  maxAuthFailures: 5,
  authFailureWindowMs: 600_000,
  tlsHandshakeTimeoutMs: 60_000,
};

/** What the server needs to know about the listener a connection came in on. */
export type Pop3ListenerInfo = Pick<ListenerSettings, 'key'> & { tls?: 'implicit' };

export interface Pop3ServerOptions {
  config: Config;
  store: Store;
  logger: Logger;
  clock?: ServerClock;
  /** overrides of DEFAULT_POP3_LIMITS */
  limits?: Partial<Pop3Limits>;
  /** default: config.hostname */
  hostname?: string;
  /** default: createAuthenticator(store) */
  authenticate?: Authenticator;
  /** default: a lock map in this process (see lock.ts for the cluster-wide one to come) */
  locks?: MaildropLocks;
}

export interface Pop3Server {
  /** a handler for startListeners serving one configured POP3 listener */
  handler(listener: Pop3ListenerInfo): ConnectionHandler;
  /** starts a session on an accepted socket (what handler().accept does) */
  handle(socket: Socket, conn: ConnectionInfo, listener: Pop3ListenerInfo): void;
  /** idle sessions are closed without UPDATE, running commands finish; resolves when all sessions are gone */
  drain(timeoutMs?: number): Promise<void>;
  /** new sessions use the new configuration and TLS files; running sessions are not touched */
  reload(config: Config): void;
  /** live sessions */
  sessions(): number;
}

export class Pop3SetupError extends Error {
  override readonly name = 'Pop3SetupError';
}

/** Reads pop3.tls once; null when TLS is not configured. Throws Pop3SetupError naming the file. */
export function loadPop3Tls(config: Config): SecureContext | null {
  try {
    return loadTlsFiles(config.pop3.tls, 'pop3.tls');
  } catch (e) {
    if (e instanceof TlsSetupError) throw new Pop3SetupError(e.message, { cause: e });
    throw e;
  }
}

function checkImplicitTls(config: Config, tls: SecureContext | null): void {
  if (tls) return;
  const implicit = configuredListeners(config).find((l) => l.proto === 'pop3' && l.tls === 'implicit');
  if (implicit) throw new Pop3SetupError(`${implicit.key}: "tls: implicit" needs pop3.tls (cert and key)`);
}

interface Shared {
  config: Config;
  tls: SecureContext | null;
  limits: Pop3Limits;
}

class Server implements Pop3Server {
  private shared: Shared;
  private readonly clock: ServerClock;
  private readonly authLimiter: AuthLimiter;
  private readonly authenticate: Authenticator;
  private readonly locks: MaildropLocks;
  /** sessions by the accepted TCP socket (the key the listeners' shutdown hook gives back) */
  private readonly live: LiveSessions<Pop3Session>;

  constructor(private readonly options: Pop3ServerOptions) {
    this.clock = options.clock ?? systemClock;
    this.live = new LiveSessions(this.clock);
    this.shared = this.build(options.config);
    const { maxAuthFailures, authFailureWindowMs } = this.shared.limits;
    this.authLimiter = new AuthLimiter({ maxFailures: maxAuthFailures, windowMs: authFailureWindowMs });
    this.authenticate = options.authenticate ?? createAuthenticator(options.store);
    this.locks = options.locks ?? new LocalMaildropLocks();
  }

  private build(config: Config): Shared {
    const tls = loadPop3Tls(config);
    checkImplicitTls(config, tls);
    return { config, tls, limits: { ...DEFAULT_POP3_LIMITS, ...this.options.limits } };
  }

  private hostname(): string {
    return this.options.hostname ?? this.shared.config.hostname;
  }

  private settingsFor(listener: Pop3ListenerInfo): Pop3Settings {
    const { idleTimeoutMs, authFailureDelayMs, maxBadCommands, maxCommandLine, maxAuthLine } = this.shared.limits;
    return {
      idleTimeoutMs,
      authFailureDelayMs,
      maxBadCommands,
      maxCommandLine,
      maxAuthLine,
      hostname: this.hostname(),
      listener: listener.key,
      tlsAvailable: this.shared.tls !== null,
    };
  }

  private upgrader(context: SecureContext): (stream: Duplex) => Promise<Duplex> {
    const timeoutMs = this.shared.limits.tlsHandshakeTimeoutMs;
    // the session logs a failed STLS itself
    return (stream) => handshake(new TLSSocket(stream, { isServer: true, secureContext: context }), this.clock, timeoutMs, null);
  }

  handle(socket: Socket, conn: ConnectionInfo, listener: Pop3ListenerInfo): void {
    const log = this.options.logger.child({ proto: 'pop3', client: conn.client, session: conn.id });
    if (this.live.draining) return closeWith(socket, err('Server shutting down', 'SYS/TEMP'));
    const { tls: context, limits } = this.shared;
    // each response is written whole, so Nagle's algorithm would only add delayed-ACK stalls
    socket.setNoDelay(true);
    const implicit = listener.tls === 'implicit';
    let stream: Duplex = socket;
    if (implicit) {
      if (!context) return void socket.destroy();
      const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
      void handshake(secure, this.clock, limits.tlsHandshakeTimeoutMs, log).catch(() => undefined);
      stream = secure;
    }
    const session = new Pop3Session({
      stream,
      peer: { address: conn.client, port: conn.clientPort, loopback: isLoopback(conn.client) },
      tls: implicit,
      settings: this.settingsFor(listener),
      services: { store: this.options.store, authenticate: this.authenticate, locks: this.locks, authLimiter: this.authLimiter },
      logger: log,
      clock: this.clock,
      ...(context ? { upgradeTls: this.upgrader(context) } : {}),
      onClose: () => this.live.remove(socket),
    });
    this.live.add(socket, session);
    session.start();
  }

  handler(listener: Pop3ListenerInfo): ConnectionHandler {
    return this.live.handler('pop3', this.options.logger, () => this.hostname(), (socket, conn) => this.handle(socket, conn, listener));
  }

  drain(timeoutMs = 10_000): Promise<void> {
    return this.live.drain(timeoutMs);
  }

  reload(config: Config): void {
    try {
      this.shared = this.build(config);
      this.options.logger.info({ proto: 'pop3', tls: this.shared.tls !== null }, 'pop3 configuration reloaded');
    } catch (e) {
      this.options.logger.error({ err: e, proto: 'pop3' }, 'pop3 reload failed; keeping the running configuration');
    }
  }

  sessions(): number {
    return this.live.size;
  }
}

export function createPop3Server(options: Pop3ServerOptions): Pop3Server {
  return new Server(options);
}
