/*
 * The SMTP session's types: its settings, its state as a discriminated union of phases, the transaction,
 * and the narrow context every verb handler works through. Types only; no behaviour lives here.
 * A handler changes `ctx.state` and queues replies; only the session touches the stream.
 */
import type { Logger } from '../../log/logger.js';
import type { BdatChunk, BdatTotal } from '../proto/bdat.js';
import type { DataReader } from '../proto/data.js';
import type { MailParams } from '../proto/params.js';
import type { Reply } from '../proto/reply.js';
import type { ClientInfo, EnvelopeRecipient, SmtpServices } from '../services.js';
import type { AuthLimiter } from '../../auth/limiter.js';
import type { MessageContent } from './content.js';
import type { TempfailRule } from './tempfail.js';
import type { ServerClock } from '../../net/clock.js';

export interface SessionLimits {
  messageSizeLimit: number;
  /** recipients per message (452 4.5.3 beyond) */
  maxRecipients: number;
  /** protocol errors before 421 4.7.0 and disconnect */
  maxErrors: number;
  /** idle time waiting for a command (RFC 5321 §4.5.3.2: at least 5 minutes) */
  commandTimeoutMs: number;
  /** idle time waiting for DATA or BDAT bytes (RFC 5321 §4.5.3.2.5: 3 minutes per block) */
  dataTimeoutMs: number;
  /** delay before answering a failed AUTH */
  authFailureDelayMs: number;
  /** command line length including CRLF */
  maxCommandLine: number;
  /** Received: lines (ours included) beyond which a message is refused as a mail loop (Postfix's hopcount_limit) */
  hopCountLimit: number;
}

export interface SessionSettings extends SessionLimits {
  hostname: string;
  /** RFC 6409 submission listener: AUTH required, Date/Message-ID added */
  submission: boolean;
  /** STARTTLS may be offered (a TLS context is loaded and the stream is not TLS yet) */
  starttls: boolean;
  /** configuration key of the listener, for logs */
  listener: string;
  /** domain of the address a bare RCPT TO:<Postmaster> stands for */
  postmasterDomain: string;
  /** RFC 2033 LMTP: LHLO instead of HELO/EHLO, one reply per recipient after the message */
  lmtp: boolean;
  /** smtp.tempfail as it is now (a reload changes it for live sessions too); absent: never */
  tempfail?: () => TempfailRule | null;
}

export interface PeerInfo {
  address: string;
  port: number;
  /** in mynetworks */
  trusted: boolean;
  /** 127.0.0.0/8 or ::1: AUTH allowed without TLS */
  loopback: boolean;
}

export interface Helo {
  name: string;
  /** EHLO rather than HELO */
  esmtp: boolean;
}

export interface Transaction {
  /** "" for the null sender */
  sender: string;
  params: MailParams;
  recipients: EnvelopeRecipient[];
  /** RCPT commands seen, accepted or not (DATA answers 503 before any, 554 when none was accepted) */
  rcptCommands: number;
  content: MessageContent;
  /** set once the transaction uses BDAT */
  bdat: BdatTotal | null;
}

export type BdatOutcome =
  | { kind: 'keep'; helo: Helo; tx: Transaction }
  /** `after`: the state to return to once the chunk has been read and `reply` sent */
  | { kind: 'refuse'; reply: Reply; after: SessionState; countsAsError: boolean; /** the transaction this refusal ends */ ended?: Transaction };

export type SaslStep = { mechanism: 'PLAIN' } | { mechanism: 'LOGIN'; user: string | null };

export type SessionState =
  /** greeted, no HELO/EHLO yet (also right after STARTTLS) */
  | { phase: 'fresh' }
  | { phase: 'ready'; helo: Helo }
  | { phase: 'mail'; helo: Helo; tx: Transaction }
  | { phase: 'data'; helo: Helo; tx: Transaction; reader: DataReader }
  /** reading the octets of one BDAT chunk: kept in the transaction, or consumed only to be refused */
  | { phase: 'bdat'; chunk: BdatChunk; last: boolean; outcome: BdatOutcome }
  | { phase: 'auth'; helo: Helo; step: SaslStep }
  /** TLS handshake in progress: every byte belongs to TLS */
  | { phase: 'tls' }
  | { phase: 'closed' };

export type Phase = SessionState['phase'];

/** Fields of the one log line written for a refused command. */
export interface RejectFields {
  sender?: string;
  recipient?: string;
  user?: string;
}

/** What verb handlers see of the session. */
export interface SessionContext {
  readonly settings: SessionSettings;
  readonly services: SmtpServices;
  readonly peer: PeerInfo;
  readonly log: Logger;
  readonly clock: ServerClock;
  readonly authLimiter: AuthLimiter;
  state: SessionState;
  readonly tls: boolean;
  /** the server is shutting down: new commands get 421 4.3.2 */
  readonly draining: boolean;
  authUser: string | null;
  /** queues a reply; a 4xx/5xx one is logged as a reject with `fields` */
  reply(r: Reply, fields?: RejectFields): void;
  /** writes the queued replies now (end of a pipelined group) */
  flush(): void;
  /** sends `last` if given and closes the connection */
  close(last?: Reply): void;
  /**
   * QUIT: sends `last` and closes without waiting to read the client's end (like Postfix), unless the
   * client already sent more after QUIT; then as close().
   */
  quit(last: Reply): void;
  /** counts a protocol error; past the limit the session answers 421 and closes */
  protocolError(): void;
  /** line limit for the next lines (AUTH exchanges allow longer ones) */
  setLineLimit(octets: number): void;
  /** hands the stream to TLS; the STARTTLS handler has flushed its 220 */
  startTls(): void;
  clientInfo(helo: Helo | null): ClientInfo;
  /** a fresh id for the Received: line and Message-ID */
  newId(): string;
}
