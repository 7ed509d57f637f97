/*
 * The IMAP session's types: settings, protocol state, the tagged result of a command and the narrow
 * context command handlers work through. Types only; behaviour lives in session.ts and commands/.
 */
import type { AuthLimiter } from '../../auth/limiter.js';
import type { Authenticator } from '../../auth/authenticate.js';
import type { Logger } from '../../log/logger.js';
import type { ServerClock } from '../../net/clock.js';
import type { Account, Store } from '../../store/index.js';
import type { HeaderCache } from '../header-cache.js';
import type { ParsedCommand } from '../proto/tokens.js';
import type { MailboxView } from './view.js';

export interface ImapLimits {
  /** octets of one command's text, literals excluded */
  maxCommandLine: number;
  /** largest literal outside APPEND */
  maxLiteral: number;
  /** APPENDLIMIT: largest message accepted by APPEND */
  appendLimit: number;
  /** RFC 9051 §5.4: at least 30 minutes of inactivity before autologout */
  autologoutMs: number;
  /** before the greeting's login exchange: shorter, as unauthenticated sessions cost us only */
  preauthTimeoutMs: number;
  /** delay before answering a failed LOGIN/AUTHENTICATE */
  authFailureDelayMs: number;
  /** failed logins per client address (and per user name) in the window before lock-out */
  maxAuthFailures: number;
  authFailureWindowMs: number;
  /** BAD answers before the session is closed */
  maxErrors: number;
  /** sessions one user may have logged in at once on this server */
  maxConnectionsPerUser: number;
  tlsHandshakeTimeoutMs: number;
}

export interface ImapSettings extends ImapLimits {
  hostname: string;
  /** STARTTLS may be offered (a TLS context is loaded and the stream is not TLS yet) */
  starttls: boolean;
  listener: string;
}

export interface PeerInfo {
  address: string;
  port: number;
  loopback: boolean;
}

export type ImapState = 'notauth' | 'auth' | 'selected' | 'logout';

export interface Tagged {
  status: 'OK' | 'NO' | 'BAD';
  code?: string;
  text: string;
}

export const ok = (text: string, code?: string): Tagged => (code ? { status: 'OK', code, text } : { status: 'OK', text });
export const no = (text: string, code?: string): Tagged => (code ? { status: 'NO', code, text } : { status: 'NO', text });
export const bad = (text: string, code?: string): Tagged => (code ? { status: 'BAD', code, text } : { status: 'BAD', text });

/** Extensions a client can ENABLE. */
export type Enableable = 'IMAP4REV2' | 'CONDSTORE' | 'QRESYNC' | 'UTF8=ACCEPT';

export interface SessionCounters {
  commands: number;
  fetched: number;
  fetchedBytes: number;
  appended: number;
  expunged: number;
}

/** What command handlers see of the session. */
export interface SessionContext {
  readonly settings: ImapSettings;
  readonly store: Store;
  readonly log: Logger;
  readonly clock: ServerClock;
  readonly peer: PeerInfo;
  readonly tls: boolean;
  readonly authenticate: Authenticator;
  readonly authLimiter: AuthLimiter;
  readonly userLimiter: AuthLimiter;
  readonly counters: SessionCounters;
  /** header values SEARCH looked at, shared by the server's sessions */
  readonly headerCache: HeaderCache;
  state: ImapState;
  account: Account | null;
  view: MailboxView | null;
  readonly enabled: Set<Enableable>;
  /** CONDSTORE is on: enabled, or a CONDSTORE command/parameter was used (RFC 7162 §3.1) */
  condstore: boolean;
  /** mailbox names in UTF-8 rather than modified UTF-7 */
  readonly utf8: boolean;
  /** queues an untagged (or continuation) response; `data` must end with CRLF */
  send(data: string | Buffer): void;
  /** writes what is queued and waits while the client is not reading (back-pressure) */
  flush(): Promise<void>;
  /** reads the next line raw (SASL responses, IDLE's DONE); null when the client went away */
  readRawLine(): Promise<string | null>;
  /** after the tagged OK of STARTTLS: switch the stream to TLS */
  requestTls(): void;
  /** capability list for the current state */
  capabilities(): string;
  /** pending mailbox changes as untagged responses; `expunge` says whether EXPUNGE may be sent now */
  sync(expunge: boolean): Promise<void>;
  /** a login succeeded: state, logging; false (and still not logged in) when the user has too many sessions */
  loggedIn(account: Account, mechanism: string): boolean;
  /** LOGIN/AUTHENTICATE may run on this connection (TLS, or loopback) */
  plaintextLoginAllowed(): boolean;
  /** sends `last` (a full untagged line) if given and closes the connection */
  close(last?: string): void;
  /** the server is shutting down */
  isDraining(): boolean;
  /** subscribes `view` to the change feed (null: unsubscribe) */
  watch(view: MailboxView | null): void;
  /** IDLE's hook: called on a change-feed signal, on shutdown and on close */
  onWake(fn: (() => void) | null): void;
}

export type CommandHandler = (ctx: SessionContext, cmd: ParsedCommand) => Promise<Tagged>;

export interface CommandSpec {
  states: readonly ImapState[];
  run: CommandHandler;
  /**
   * RFC 9051 §7.5.1: EXPUNGE responses must not be sent during FETCH, STORE, SEARCH (and their UID
   * forms, which may still send them — we choose not to, for simplicity). Defaults to true.
   */
  expungeAfter?: boolean;
  /** reads the selected mailbox's messages first (MailboxView.load): the command uses message numbers, flags or sizes */
  view?: boolean;
}
