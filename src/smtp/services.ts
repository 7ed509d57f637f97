/*
 * What the SMTP/LMTP server needs from the rest of Cartero, injected at start so that the protocol code
 * knows nothing about storage, directory or routing. serve.ts wires the real implementations
 * (src/policy/, src/auth/, src/queue/); tests pass fakes. Every method may throw a StoreError
 * `unavailable`, which the session answers with a 4xx (451 4.3.0) and nothing is acknowledged.
 */

/** The client side of one SMTP session, as policy sees it. */
export interface ClientInfo {
  /** remote IP address (IPv4 or IPv6, no brackets) */
  address: string;
  port: number;
  /** EHLO/HELO argument */
  helo: string | null;
  tls: boolean;
  /** the authenticated SASL identity (an account address), or null */
  authUser: string | null;
  /** the client is in `mynetworks` */
  trusted: boolean;
  /** the listener is a submission port (RFC 6409) */
  submission: boolean;
}

export type RecipientVerdict =
  /** accept; `local` marks a recipient delivered into a mailbox here, `relay` one passed on */
  | { action: 'accept'; kind: 'local' | 'relay' }
  /** refuse with this reply, e.g. 550 5.1.1, 554 5.7.1 Relay access denied, 452 4.2.2 over quota */
  | { action: 'reject'; code: number; enhanced: string; text: string };

export interface RecipientQuery {
  client: ClientInfo;
  /** envelope sender ("" for the null sender) */
  sender: string;
  /** the recipient address as parsed from RCPT TO (no angle brackets) */
  recipient: string;
}

export interface SenderQuery {
  client: ClientInfo;
  sender: string;
}

export type SenderVerdict = { action: 'accept' } | { action: 'reject'; code: number; enhanced: string; text: string };

export interface EnvelopeRecipient {
  address: string;
  orcpt?: string | null;
  notify?: string[] | null;
}

export interface Envelope {
  sender: string;
  recipients: EnvelopeRecipient[];
  /** JSON-serialisable details kept with the queue entry: client, helo, auth, ret, envid, body, smtputf8 */
  meta: Record<string, unknown>;
}

/** One reply of an LMTP delivery (RFC 2033 §4.2), e.g. 250 2.0.0, 452 4.2.2 or 550 5.1.1. */
export interface RecipientReply {
  code: number;
  enhanced: string;
  text: string;
}

export interface SmtpServices {
  /** RCPT-time policy (relay restrictions, recipient maps, quota when known) */
  checkRecipient(query: RecipientQuery): Promise<RecipientVerdict>;
  /** MAIL-time policy (on submission: the authenticated user may only use their own addresses) */
  checkSender(query: SenderQuery): Promise<SenderVerdict>;
  /** SASL PLAIN/LOGIN credential check; returns the canonical account address or null */
  authenticate(user: string, password: string): Promise<string | null>;
  /**
   * Durable queue commit: resolves only after the message and its envelope are on stable storage.
   * `content` is the full message as it will be stored (our Received: header already prepended).
   */
  commit(envelope: Envelope, content: Buffer): Promise<{ queueId: string }>;
  /**
   * LMTP listeners only: final delivery, one reply per envelope recipient in envelope order, each 2xx
   * only once that recipient's copy is on stable storage. Without it an LMTP session answers 451.
   */
  deliver?(envelope: Envelope, content: Buffer): Promise<RecipientReply[]>;
  /**
   * ETRN (RFC 1985), advertised in EHLO only when present: makes the queued mail for `domain` (with
   * `subdomains`, also for its subdomains) due now and wakes the scheduler. Resolves to the number of
   * queue entries started, or null when `domain` is not one we queue mail for (not in relay_domains),
   * which the session answers 459. The session has already checked that the client may ask (mynetworks
   * or authenticated); `client` is for the admin log.
   */
  flushDomain?(domain: string, options: { subdomains: boolean; client: ClientInfo }): Promise<number | null>;
}
