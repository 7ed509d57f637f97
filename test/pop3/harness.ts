/*
 * Runs one POP3 session over an in-memory stream against a real store, with a manual or real clock and
 * a captured log, for the session's unit tests. Sessions share the lock map and the failure counters
 * passed in, as the sessions of one server do.
 */
import type { Duplex } from 'node:stream';
import { createAuthenticator, type Authenticator } from '../../src/auth/authenticate.js';
import { AuthLimiter } from '../../src/auth/limiter.js';
import { systemClock, type ServerClock } from '../../src/net/clock.js';
import { LocalMaildropLocks, type MaildropLocks } from '../../src/pop3/lock.js';
import { DEFAULT_POP3_LIMITS } from '../../src/pop3/server.js';
import { Pop3Session } from '../../src/pop3/session/session.js';
import type { PeerInfo, Pop3Settings } from '../../src/pop3/session/types.js';
import type { Store } from '../../src/store/index.js';
import { duplexPair, Pop3Client } from './client.js';
import { captureLogger, type LogLine } from './fixture.js';

export const HOST = 'pop.example.test';

export interface Shared {
  store: Store;
  locks?: MaildropLocks;
  authLimiter?: AuthLimiter;
  authenticate?: Authenticator;
  clock?: ServerClock;
}

export interface HarnessOptions {
  settings?: Partial<Pop3Settings>;
  peer?: Partial<PeerInfo>;
  tls?: boolean;
  upgradeTls?: (stream: Duplex) => Promise<Duplex>;
}

export interface Harness {
  session: Pop3Session;
  client: Pop3Client;
  logs: LogLine[];
  closed: Promise<void>;
}

const open = new Set<Pop3Session>();

export function endSessions(): void {
  for (const s of open) s.destroy();
  open.clear();
}

export function settings(over: Partial<Pop3Settings> = {}): Pop3Settings {
  const { maxAuthFailures: _m, authFailureWindowMs: _w, tlsHandshakeTimeoutMs: _t, ...limits } = DEFAULT_POP3_LIMITS;
  return { ...limits, authFailureDelayMs: 0, hostname: HOST, listener: 'pop3.listen[0]', tlsAvailable: false, ...over };
}

/** Server-side state shared between the sessions of one test (locks, failure counters, authenticator). */
export function shared(store: Store, clock?: ServerClock): Required<Shared> {
  return {
    store,
    locks: new LocalMaildropLocks(),
    authLimiter: new AuthLimiter({ maxFailures: 5, windowMs: 600_000 }),
    authenticate: createAuthenticator(store),
    clock: clock ?? systemClock,
  };
}

export function startSession(s: Required<Shared>, options: HarnessOptions = {}): Harness {
  const [serverSide, clientSide] = duplexPair();
  const logs: LogLine[] = [];
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const session = new Pop3Session({
    stream: serverSide,
    peer: { address: '192.0.2.10', port: 40000, loopback: true, ...options.peer },
    tls: options.tls ?? false,
    settings: settings(options.settings),
    services: { store: s.store, authenticate: s.authenticate, locks: s.locks, authLimiter: s.authLimiter },
    logger: captureLogger(logs).child({ proto: 'pop3' }),
    clock: s.clock,
    ...(options.upgradeTls ? { upgradeTls: options.upgradeTls } : {}),
    onClose: () => resolveClosed(),
  });
  const client = new Pop3Client(clientSide);
  open.add(session);
  session.start();
  return { session, client, logs, closed };
}
