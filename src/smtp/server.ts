/*
 * The SMTP server: turns sockets accepted by src/net/listeners.ts into sessions, and holds what sessions
 * share: settings from the configuration, the TLS context (smtp.tls, loaded once and on reload), the
 * per-address AUTH failure counters and the list of live sessions for a graceful drain. Knows nothing of
 * storage: everything else comes through SmtpServices. A bad TLS file stops creation with SmtpSetupError;
 * on reload it is logged and the running context kept. Socket errors never escape a session.
 */
import type { Socket } from 'node:net';
import { randomHex } from '../random-pool.js';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import { configuredListeners, type Config, type ListenerSettings } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { closeWith, protocolListenerSpecs, startListeners, type BoundListener, type ConnectionHandler, type ConnectionInfo, type Listeners } from '../net/listeners.js';
import { handshake, isLoopback, loadTlsFiles, TlsSetupError } from '../net/tls.js';
import { createNetworkMatcher } from '../policy/mynetworks.js';
import type { SmtpServices } from './services.js';
import { AuthLimiter } from '../auth/limiter.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import { LiveSessions } from '../net/live-sessions.js';
import { COMMAND_LINE_LIMIT } from './proto/command.js';
import { Session } from './session/session.js';
import { tempfailRule, type TempfailRule } from './session/tempfail.js';
import type { SessionLimits, SessionSettings } from './session/types.js';

export interface SmtpLimits extends SessionLimits {
  /** AUTH failures per client address within the window before 421 and disconnect */
  maxAuthFailures: number;
  authFailureWindowMs: number;
  /** TLS handshake (implicit or STARTTLS) must finish within this */
  tlsHandshakeTimeoutMs: number;
}

export const DEFAULT_SMTP_LIMITS: Omit<SmtpLimits, 'messageSizeLimit'> = {
  maxRecipients: 1000,
  maxErrors: 10,
  commandTimeoutMs: 300_000,
  dataTimeoutMs: 180_000,
  authFailureDelayMs: 1000,
  maxCommandLine: COMMAND_LINE_LIMIT,
  hopCountLimit: 50,
  maxAuthFailures: 5,
  authFailureWindowMs: 600_000,
  tlsHandshakeTimeoutMs: 60_000,
};

/** What the server needs to know about the listener a connection came in on. */
export type SmtpListenerInfo = Pick<ListenerSettings, 'key' | 'submission'> & { tls?: 'implicit' };

export interface SmtpServerOptions {
  config: Config;
  /** 'lmtp' serves RFC 2033 with the lmtp section's TLS files (default 'smtp') */
  protocol?: 'smtp' | 'lmtp';
  services: SmtpServices;
  logger: Logger;
  /** default: config.hostname */
  hostname?: string;
  clock?: ServerClock;
  /** overrides of the defaults (and of config.smtp.message_size_limit) */
  limits?: Partial<SmtpLimits>;
  /** the mynetworks test; default: config.mynetworks */
  trusted?: (address: string) => boolean;
}

export interface SmtpServer {
  /** a handler for startListeners serving one configured SMTP listener */
  handler(listener: SmtpListenerInfo): ConnectionHandler;
  /** starts a session on an accepted socket (what handler().accept does) */
  handle(socket: Socket, conn: ConnectionInfo, listener: SmtpListenerInfo): void;
  /** new commands get 421 4.3.2, messages in transfer finish; resolves when all sessions are gone */
  drain(timeoutMs?: number): Promise<void>;
  /** new sessions use the new configuration and TLS files; running sessions are not touched */
  reload(config: Config): void;
  /** live sessions */
  sessions(): number;
}

export class SmtpSetupError extends Error {
  override readonly name = 'SmtpSetupError';
}

/** Reads smtp.tls (or lmtp.tls) once; null when TLS is not configured. Throws SmtpSetupError naming the file. */
export function loadTlsContext(config: Config, protocol: 'smtp' | 'lmtp' = 'smtp'): SecureContext | null {
  try {
    return loadTlsFiles(config[protocol].tls, `${protocol}.tls`);
  } catch (err) {
    if (err instanceof TlsSetupError) throw new SmtpSetupError(err.message, { cause: err });
    throw err;
  }
}

function checkImplicitTls(config: Config, tls: SecureContext | null, protocol: 'smtp' | 'lmtp'): void {
  if (tls) return;
  const implicit = configuredListeners(config).find((l) => l.proto === protocol && l.tls === 'implicit');
  if (implicit) throw new SmtpSetupError(`${implicit.key}: "tls: implicit" needs ${protocol}.tls (cert and key)`);
}

interface Shared {
  config: Config;
  tls: SecureContext | null;
  trusted: (address: string) => boolean;
  limits: SmtpLimits;
  /** per connection work done once per configuration: settings by listener, mynetworks answers by address */
  settings: Map<string, SessionSettings>;
  trustedCache: Map<string, boolean>;
  /** smtp.tempfail (maintenance), null when off or on LMTP */
  tempfail: TempfailRule | null;
}

/** Beyond this many client addresses the mynetworks answers are computed afresh (a scan cannot grow it). */
const MAX_TRUSTED_CACHE = 4096;

function sessionLimits(l: SmtpLimits): SessionLimits {
  return {
    messageSizeLimit: l.messageSizeLimit,
    maxRecipients: l.maxRecipients,
    maxErrors: l.maxErrors,
    commandTimeoutMs: l.commandTimeoutMs,
    dataTimeoutMs: l.dataTimeoutMs,
    authFailureDelayMs: l.authFailureDelayMs,
    maxCommandLine: l.maxCommandLine,
    hopCountLimit: l.hopCountLimit,
  };
}

class Server implements SmtpServer {
  private shared: Shared;
  private readonly clock: ServerClock;
  private readonly authLimiter: AuthLimiter;
  /** sessions by the accepted TCP socket (the key the listeners' shutdown hook gives back) */
  private readonly live: LiveSessions<Session>;

  private readonly protocol: 'smtp' | 'lmtp';

  constructor(private readonly options: SmtpServerOptions) {
    this.protocol = options.protocol ?? 'smtp';
    this.clock = options.clock ?? systemClock;
    this.live = new LiveSessions(this.clock);
    this.shared = this.build(options.config);
    this.authLimiter = new AuthLimiter({ maxFailures: this.shared.limits.maxAuthFailures, windowMs: this.shared.limits.authFailureWindowMs });
  }

  private build(config: Config): Shared {
    const tls = loadTlsContext(config, this.protocol);
    checkImplicitTls(config, tls, this.protocol);
    const s = config.smtp;
    const configured = {
      messageSizeLimit: s.message_size_limit,
      maxRecipients: s.recipient_limit,
      hopCountLimit: s.hopcount_limit,
      maxErrors: s.error_limit,
      commandTimeoutMs: s.command_timeout * 1000,
      dataTimeoutMs: s.data_timeout * 1000,
    };
    const limits = { ...DEFAULT_SMTP_LIMITS, ...configured, ...this.options.limits };
    // maintenance mode is an SMTP matter: an LMTP backend in maintenance would only make its frontends queue
    const tempfail = this.protocol === 'smtp' ? tempfailRule(config.smtp.tempfail) : null;
    return { config, tls, trusted: this.options.trusted ?? createNetworkMatcher(config.mynetworks), limits, settings: new Map(), trustedCache: new Map(), tempfail };
  }

  private isTrusted(address: string): boolean {
    const cache = this.shared.trustedCache;
    let trusted = cache.get(address);
    if (trusted === undefined) {
      trusted = this.shared.trusted(address);
      if (cache.size >= MAX_TRUSTED_CACHE) cache.clear();
      cache.set(address, trusted);
    }
    return trusted;
  }

  private hostname(): string {
    return this.options.hostname ?? this.shared.config.hostname;
  }

  private readonly newId = (): string => (this.clock.now().toString(36) + randomHex(5)).toUpperCase();

  /** The same object for every session of a listener until the next reload (sessions never change it). */
  private settingsFor(listener: SmtpListenerInfo, tlsActive: boolean): SessionSettings {
    const key = `${listener.key}\0${listener.submission}\0${tlsActive}`;
    let settings = this.shared.settings.get(key);
    if (!settings) this.shared.settings.set(key, (settings = this.buildSettings(listener, tlsActive)));
    return settings;
  }

  private buildSettings(listener: SmtpListenerInfo, tlsActive: boolean): SessionSettings {
    const starttls = this.shared.tls !== null && !tlsActive;
    return {
      ...sessionLimits(this.shared.limits),
      hostname: this.hostname(),
      submission: listener.submission,
      starttls,
      listener: listener.key,
      lmtp: this.protocol === 'lmtp',
      postmasterDomain: this.shared.config.domains[0] ?? this.hostname(),
      // read at each use, so that a reload reaches sessions already open (a sender's cached connection)
      tempfail: () => this.shared.tempfail,
    };
  }

  private upgrader(context: SecureContext): (stream: Duplex) => Promise<Duplex> {
    const timeoutMs = this.shared.limits.tlsHandshakeTimeoutMs;
    // the session logs a failed STARTTLS itself
    return (stream) => handshake(new TLSSocket(stream, { isServer: true, secureContext: context }), this.clock, timeoutMs, null);
  }

  handle(socket: Socket, conn: ConnectionInfo, listener: SmtpListenerInfo): void {
    const log = this.options.logger.child({ proto: this.protocol, client: conn.client, session: conn.id });
    if (this.live.draining) return closeWith(socket, `421 4.3.2 ${this.hostname()} Service shutting down, closing transmission channel\r\n`);
    const { tls: context, limits } = this.shared;
    const implicit = listener.tls === 'implicit';
    let stream: Duplex = socket;
    if (implicit) {
      if (!context) return void socket.destroy();
      const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
      void handshake(secure, this.clock, limits.tlsHandshakeTimeoutMs, log).catch(() => undefined);
      stream = secure;
    }
    const session = new Session({
      stream,
      peer: { address: conn.client, port: conn.clientPort, trusted: this.isTrusted(conn.client), loopback: isLoopback(conn.client) },
      tls: implicit,
      settings: this.settingsFor(listener, implicit),
      services: this.options.services,
      logger: log,
      clock: this.clock,
      authLimiter: this.authLimiter,
      ...(context ? { upgradeTls: this.upgrader(context) } : {}),
      newId: this.newId,
      onClose: () => this.live.remove(socket),
    });
    this.live.add(socket, session);
    session.start();
  }


  handler(listener: SmtpListenerInfo): ConnectionHandler {
    return this.live.handler(this.protocol, this.options.logger, () => this.hostname(), (socket, conn) => this.handle(socket, conn, listener));
  }

  drain(timeoutMs = 10_000): Promise<void> {
    return this.live.drain(timeoutMs);
  }

  reload(config: Config): void {
    try {
      this.shared = this.build(config);
      const tempfail = this.shared.tempfail ? { tempfail: this.shared.tempfail.at } : {};
      this.options.logger.info({ proto: this.protocol, tls: this.shared.tls !== null, ...tempfail }, 'smtp configuration reloaded');
    } catch (err) {
      this.options.logger.error({ err, proto: this.protocol }, 'smtp reload failed; keeping the running configuration');
    }
  }

  sessions(): number {
    return this.live.size;
  }
}

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  return new Server(options);
}

export interface RunningSmtp {
  server: SmtpServer;
  listeners: Listeners;
  bound: readonly BoundListener[];
  /** drain sessions and stop listening */
  close(timeoutMs?: number): Promise<void>;
}

/** Creates the server and binds the configured SMTP listeners (for serve.ts and end-to-end tests). */
export async function startSmtp(options: SmtpServerOptions): Promise<RunningSmtp> {
  const server = createSmtpServer(options);
  const listeners = await startListeners(protocolListenerSpecs(options.config, 'smtp', server), { logger: options.logger });
  return {
    server,
    listeners,
    bound: listeners.bound,
    close: async (timeoutMs = 10_000) => {
      await Promise.all([server.drain(timeoutMs), listeners.close(timeoutMs)]);
    },
  };
}
