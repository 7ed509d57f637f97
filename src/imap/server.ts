/*
 * The IMAP server: turns sockets accepted by src/net/listeners.ts into sessions and holds what sessions
 * share — limits, the TLS context (imap.tls, loaded once and on reload), the login failure counters per
 * client address and per user name, and the list of live sessions for a graceful drain. The store is its
 * only way to data. A bad TLS file stops creation with ImapSetupError; on reload it is logged and the
 * running context kept. Socket errors never escape a session.
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
import { UserSlots } from '../net/user-slots.js';
import { HeaderCache } from './header-cache.js';
import { ImapSession } from './session/session.js';
import type { ImapLimits, ImapSettings } from './session/types.js';

export type { ImapLimits } from './session/types.js';

export const DEFAULT_IMAP_LIMITS: ImapLimits = {
  maxCommandLine: 64 * 1024,
  maxLiteral: 64 * 1024,
  appendLimit: 50 * 1024 * 1024,
  autologoutMs: 30 * 60_000,
  preauthTimeoutMs: 60_000,
  authFailureDelayMs: 2000,
  maxAuthFailures: 10,
  authFailureWindowMs: 600_000,
  maxErrors: 20,
  maxConnectionsPerUser: 50,
  tlsHandshakeTimeoutMs: 60_000,
};

/** What the server needs to know about the listener a connection came in on. */
export type ImapListenerInfo = Pick<ListenerSettings, 'key'> & { tls?: 'implicit' };

export interface ImapServerOptions {
  config: Config;
  store: Store;
  logger: Logger;
  /** default: config.hostname */
  hostname?: string;
  clock?: ServerClock;
  /** overrides of DEFAULT_IMAP_LIMITS (APPENDLIMIT defaults to smtp.message_size_limit) */
  limits?: Partial<ImapLimits>;
  /** default: the store's directory with scrypt (src/auth/authenticate.ts) */
  authenticate?: Authenticator;
}

export interface ImapServer {
  handler(listener: ImapListenerInfo): ConnectionHandler;
  handle(socket: Socket, conn: ConnectionInfo, listener: ImapListenerInfo): void;
  /** idle sessions get BYE now, running commands finish; resolves when all sessions are gone */
  drain(timeoutMs?: number): Promise<void>;
  /** new sessions use the new configuration and TLS files */
  reload(config: Config): void;
  sessions(): number;
}

export class ImapSetupError extends Error {
  override readonly name = 'ImapSetupError';
}

interface Shared {
  config: Config;
  tls: SecureContext | null;
  limits: ImapLimits;
}

class Server implements ImapServer {
  private shared: Shared;
  private readonly clock: ServerClock;
  private readonly authLimiter: AuthLimiter;
  private readonly userLimiter: AuthLimiter;
  private readonly authenticate: Authenticator;
  private readonly live: LiveSessions<ImapSession>;
  private readonly headerCache = new HeaderCache();
  private readonly userSlots = new UserSlots();

  constructor(private readonly options: ImapServerOptions) {
    this.clock = options.clock ?? systemClock;
    this.live = new LiveSessions(this.clock);
    this.shared = this.build(options.config);
    const { maxAuthFailures, authFailureWindowMs } = this.shared.limits;
    this.authLimiter = new AuthLimiter({ maxFailures: maxAuthFailures, windowMs: authFailureWindowMs });
    this.userLimiter = new AuthLimiter({ maxFailures: maxAuthFailures, windowMs: authFailureWindowMs });
    this.authenticate = options.authenticate ?? createAuthenticator(options.store);
  }

  private build(config: Config): Shared {
    let tls: SecureContext | null;
    try {
      tls = loadTlsFiles(config.imap.tls, 'imap.tls');
    } catch (err) {
      if (err instanceof TlsSetupError) throw new ImapSetupError(err.message, { cause: err });
      throw err;
    }
    if (!tls) {
      const implicit = configuredListeners(config).find((l) => l.proto === 'imap' && l.tls === 'implicit');
      if (implicit) throw new ImapSetupError(`${implicit.key}: "tls: implicit" needs imap.tls (cert and key)`);
    }
    const limits = {
      ...DEFAULT_IMAP_LIMITS,
      appendLimit: config.smtp.message_size_limit,
      autologoutMs: config.imap.autologout * 1000,
      maxConnectionsPerUser: config.imap.max_connections_per_user,
      ...this.options.limits,
    };
    return { config, tls, limits };
  }

  private hostname(): string {
    return this.options.hostname ?? this.shared.config.hostname;
  }

  handle(socket: Socket, conn: ConnectionInfo, listener: ImapListenerInfo): void {
    const log = this.options.logger.child({ proto: 'imap', client: conn.client, session: conn.id });
    if (this.live.draining) return closeWith(socket, '* BYE Server shutting down\r\n');
    const { tls: context, limits } = this.shared;
    // responses are written in pieces (text, literal, text): without this a closing piece waits for
    // the client's delayed ACK (Nagle), ~40 ms per FETCH of bodies
    socket.setNoDelay(true);
    const implicit = listener.tls === 'implicit';
    let stream: Duplex = socket;
    if (implicit) {
      if (!context) return void socket.destroy();
      const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
      void handshake(secure, this.clock, limits.tlsHandshakeTimeoutMs, log).catch(() => undefined);
      stream = secure;
    }
    const settings: ImapSettings = { ...limits, hostname: this.hostname(), starttls: context !== null && !implicit, listener: listener.key };
    const session = new ImapSession({
      stream,
      peer: { address: conn.client, port: conn.clientPort, loopback: isLoopback(conn.client) },
      tls: implicit,
      settings,
      store: this.options.store,
      authenticate: this.authenticate,
      authLimiter: this.authLimiter,
      userLimiter: this.userLimiter,
      logger: log,
      clock: this.clock,
      ...(context
        ? { upgradeTls: (plain: Duplex) => handshake(new TLSSocket(plain, { isServer: true, secureContext: context }), this.clock, limits.tlsHandshakeTimeoutMs, null) }
        : {}),
      onClose: () => this.live.remove(socket),
      headerCache: this.headerCache,
      userSlots: this.userSlots,
    });
    this.live.add(socket, session);
    session.start();
  }

  handler(listener: ImapListenerInfo): ConnectionHandler {
    return this.live.handler('imap', this.options.logger, () => this.hostname(), (socket, conn) => this.handle(socket, conn, listener));
  }

  drain(timeoutMs = 10_000): Promise<void> {
    return this.live.drain(timeoutMs);
  }

  reload(config: Config): void {
    try {
      this.shared = this.build(config);
      this.options.logger.info({ proto: 'imap', tls: this.shared.tls !== null }, 'imap configuration reloaded');
    } catch (err) {
      this.options.logger.error({ err, proto: 'imap' }, 'imap reload failed; keeping the running configuration');
    }
  }

  sessions(): number {
    return this.live.size;
  }
}

export function createImapServer(options: ImapServerOptions): ImapServer {
  return new Server(options);
}

