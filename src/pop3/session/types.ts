/*
 * The POP3 session's types: settings, the services it reaches the rest of Cartero through, its state as
 * a discriminated union (RFC 1939 §3: AUTHORIZATION, TRANSACTION, UPDATE, plus the SASL exchange and the
 * STLS handshake), and the narrow context the command handlers work through. Types only.
 */
import type { AuthLimiter } from '../../auth/limiter.js';
import type { Authenticator } from '../../auth/authenticate.js';
import type { Logger } from '../../log/logger.js';
import type { ServerClock } from '../../net/clock.js';
import type { Store } from '../../store/index.js';
import type { MaildropLocks } from '../lock.js';
import type { Maildrop } from '../maildrop.js';

export interface Pop3SessionLimits {
  /** idle time waiting for a command, and for a client to read a response (RFC 1939 §3: at least 10 minutes) */
  idleTimeoutMs: number;
  /** delay before answering a failed login */
  authFailureDelayMs: number;
  /** unknown, malformed or out-of-state commands before the connection is closed */
  maxBadCommands: number;
  /** command line octets including CRLF (RFC 2449 §4: 255) */
  maxCommandLine: number;
  /** SASL continuation line octets */
  maxAuthLine: number;
}

export interface Pop3Settings extends Pop3SessionLimits {
  hostname: string;
  /** configuration key of the listener, for logs */
  listener: string;
  /** a TLS context is loaded: STLS can be offered while the stream is plain */
  tlsAvailable: boolean;
}

export interface Pop3Services {
  store: Store;
  authenticate: Authenticator;
  locks: MaildropLocks;
  /** failures per client address, shared by every session of the server */
  authLimiter: AuthLimiter;
}

export interface PeerInfo {
  address: string;
  port: number;
  /** 127.0.0.0/8 or ::1: plaintext login allowed without TLS */
  loopback: boolean;
}

export type SessionState =
  /** `user`: the name given by USER, waiting for PASS */
  | { phase: 'authorization'; user: string | null }
  /** AUTH PLAIN sent "+ " and waits for the client's response line */
  | { phase: 'sasl' }
  | { phase: 'transaction'; drop: Maildrop }
  /** QUIT in TRANSACTION: deletions being applied */
  | { phase: 'update' }
  /** TLS handshake in progress: every byte belongs to TLS */
  | { phase: 'tls' }
  | { phase: 'closed' };

export type Phase = SessionState['phase'];

/** How the session ended, for the logout line. */
export type EndStatus = 'quit' | 'update_failed' | 'disconnected' | 'timeout' | 'shutdown' | 'too_many_errors' | 'auth_limit' | 'error';

/** What command handlers see of the session. */
export interface SessionContext {
  readonly settings: Pop3Settings;
  readonly services: Pop3Services;
  readonly peer: PeerInfo;
  readonly log: Logger;
  readonly clock: ServerClock;
  readonly tls: boolean;
  state: SessionState;
  /** the connection is gone or going: results of slow work must be dropped */
  readonly closing: boolean;
  /** the maildrop's figures for the logout line, set by QUIT once UPDATE ran */
  summary: Record<string, unknown> | null;
  /** queues response text */
  send(text: string): void;
  /** writes the queued response text now */
  flush(): void;
  /** writes `head` and then `chunks` as they are taken, waiting for the client to read; false if it went away */
  sendBody(head: string, chunks: Iterable<Buffer>): Promise<boolean>;
  /** sends `last` if given and closes the connection; `status` goes to the logout line */
  close(last: string | undefined, status: EndStatus): void;
  /** counts a bad command; past the limit the session says so and closes */
  badCommand(): void;
  /** line limit for the next lines (a SASL response may be longer than a command) */
  setLineLimit(octets: number): void;
  /** hands the stream to TLS; the handler has queued its +OK */
  startTls(): void;
  /** plaintext USER/PASS and AUTH PLAIN are allowed now (TLS or loopback) */
  plaintextAllowed(): boolean;
}
