/*
 * The local delivery agent: files one queue recipient of a local domain into its account's INBOX, with
 * Return-Path: and Delivered-To: prepended (stored as the message's prefix over the queue's blob, so the
 * bytes are written once however many local recipients there are), appended under the idempotency key
 * `<queue id>:<recipient>` so a retry after a crash between insertion and queue completion finds the
 * first copy instead of making a second. The MIME structure of the delivered bytes is computed here,
 * once, and stored with the message for IMAP. With delivery.duplicate_suppression_window, an exact copy
 * of a message the account got lately (a client's resend after its 250 was lost) is not filed again
 * (duplicate-digest.ts). Never touches the queue and never throws for a delivery problem: over quota and
 * store trouble defer, an account that no longer exists fails (550 5.1.1).
 */
import { parseStructure, serializeStructure } from '../mime/index.js';
import { isPlainLocalPart, localKey, splitAddress, stripSubaddress, headerSafe } from '../policy/address.js';
import type { AgentResult, DeliveryAgent, DeliveryJob } from '../queue/agent.js';
import type { Account, DeliveryDigest, FileAtCommit, Mailbox, Store } from '../store/index.js';
import { duplicateDigest } from './duplicate-digest.js';
import { isStoreError } from '../store/index.js';
import { TtlCache } from '../ttl-cache.js';

export interface LocalAgentOptions {
  store: Store;
  /** recipient_delimiter characters, for recipients queued before expansion stripped them */
  delimiters: string;
  /**
   * delivery.duplicate_suppression_window in ms: an exact copy (Message-ID and body, duplicate-digest.ts)
   * of a message delivered to the same account within it is not filed again; 0 (default): off
   */
  duplicateWindowMs?: number;
}

const INBOX = 'INBOX';

async function findAccount(store: Store, recipient: string, delimiters: string): Promise<Account | null> {
  const split = splitAddress(recipient);
  if (!split || !isPlainLocalPart(split.local)) return null;
  const account = await store.directory.getAccount(localKey(split.local, split.domain));
  if (account) return account;
  const base = stripSubaddress(split.local, delimiters);
  return base === null ? null : store.directory.getAccount(localKey(base, split.domain));
}

/** The account's INBOX, created when missing (an account made outside provisionAccount, or deleted by hand). */
async function inboxOf(store: Store, account: Account): Promise<Mailbox> {
  const existing = await store.mailboxes.get(account.id, INBOX);
  if (existing) return existing;
  try {
    return await store.mailboxes.create(account.id, INBOX, { subscribed: true });
  } catch (err) {
    // another delivery created it first
    const raced = isStoreError(err, 'exists') ? await store.mailboxes.get(account.id, INBOX) : null;
    if (raced) return raced;
    throw err;
  }
}

/** Our two trace headers, put on top of the queued message (RFC 5321 §4.4, Postfix local(8)). */
export function deliveryHeaders(sender: string, recipient: string): Buffer {
  return Buffer.from(`Return-Path: <${headerSafe(sender)}>\r\nDelivered-To: ${headerSafe(recipient)}\r\n`, 'utf8');
}

/**
 * The serialised structure of exactly the bytes being stored (offsets count the trace headers). The
 * parser is total; should it ever fail anyway, the message is stored without a structure (IMAP then
 * parses on demand) rather than held back.
 */
export function structureOf(content: Buffer): string | undefined {
  try {
    return serializeStructure(parseStructure(content));
  } catch {
    return undefined;
  }
}

/** Our trace headers over the queued bytes, the whole as delivered, and its MIME structure. */
function traced(sender: string, recipient: string, queued: Buffer): { prefix: Buffer; whole: Buffer; structure: string | undefined } {
  const prefix = deliveryHeaders(sender, recipient);
  const whole = Buffer.concat([prefix, queued]);
  return { prefix, whole, structure: structureOf(whole) };
}

function failureOf(err: unknown, recipient: string): AgentResult {
  const text = err instanceof Error ? err.message : String(err);
  if (isStoreError(err, 'over_quota')) return { outcome: 'deferred', reason: `452 4.2.2 <${recipient}>: Mailbox full` };
  if (isStoreError(err, 'not_found')) return { outcome: 'deferred', reason: `451 4.3.0 mailbox vanished during delivery: ${text}` };
  return { outcome: 'deferred', reason: `451 4.3.0 mailbox store: ${text}`, storeTrouble: isStoreError(err, 'unavailable') };
}

export interface LocalAgent extends DeliveryAgent {
  /**
   * What the queue commit needs to file `recipient` itself (NewQueueMessage.file): its INBOX, our trace
   * headers and the structure of the delivered bytes; null when the account or its INBOX is not there
   * (the queue then delivers, and answers or creates what is missing).
   */
  fileAtCommit(recipient: string, sender: string, content: Buffer, now: number): Promise<FileAtCommit | null>;
}

export function createLocalAgent(options: LocalAgentOptions): LocalAgent {
  const { store, delimiters } = options;
  const windowMs = options.duplicateWindowMs ?? 0;
  // one digest per message, however many of its recipients are filed (the same Buffer for each)
  const digests = new WeakMap<Buffer, string | null>();
  function deliveryDigest(content: Buffer, now: number): { deliveryDigest?: DeliveryDigest } {
    if (windowMs <= 0) return {};
    let digest = digests.get(content);
    if (digest === undefined) {
      digest = duplicateDigest(content);
      digests.set(content, digest);
    }
    return digest === null ? {} : { deliveryDigest: { digest, since: now - windowMs } };
  }
  // Recipient -> INBOX id for a second: a burst of mail to one user costs one lookup, not two store round
  // trips per message. Stale only if the account or its INBOX is removed within that second, and then
  // the append fails (not_found) and the delivery is deferred, never misfiled.
  const inboxes = new TtlCache<number>(1000);

  /** The recipient's INBOX id; null without an account, or without an INBOX unless `create`. */
  async function inboxIdOf(recipient: string, now: number, create: boolean): Promise<number | null> {
    const cached = inboxes.get(recipient, now);
    if (cached !== undefined) return cached;
    const account = await findAccount(store, recipient, delimiters);
    const inbox = !account ? null : create ? await inboxOf(store, account) : await store.mailboxes.get(account.id, INBOX);
    if (!inbox) return null;
    inboxes.set(recipient, inbox.id, now);
    return inbox.id;
  }

  return {
    relay: 'local',
    async fileAtCommit(recipient, sender, content, now) {
      const mailboxId = await inboxIdOf(recipient, now, false);
      if (mailboxId === null) return null;
      const { prefix, structure } = traced(sender, recipient, content);
      return { recipient, mailboxId, prefix, ...(structure === undefined ? {} : { structure }), ...deliveryDigest(content, now) };
    },
    async deliver(job: DeliveryJob): Promise<AgentResult> {
      try {
        const inboxId = await inboxIdOf(job.recipient, job.now, true);
        if (inboxId === null) return { outcome: 'failed', reason: `550 5.1.1 <${job.recipient}>: user unknown in virtual mailbox table` };
        const { prefix, whole, structure } = traced(job.sender, job.recipient, job.content);
        // with the queue's blob at hand, the mailbox keeps only the headers and shares the queued bytes
        const bytes = job.blobId !== undefined ? { blobId: job.blobId, prefix } : { content: whole };
        const result = await store.messages.append(
          inboxId,
          { ...bytes, idempotencyKey: `${job.queueId}:${job.recipient}`, ...(structure === undefined ? {} : { structure }), ...deliveryDigest(job.content, job.now) },
          job.now,
        );
        const reason = !result.duplicate
          ? 'delivered to mailbox'
          : result.uid === 0
            ? 'delivered to mailbox (an exact copy was delivered lately: duplicate suppressed)'
            : 'delivered to mailbox (already there: duplicate suppressed)';
        return { outcome: 'done', reason };
      } catch (err) {
        inboxes.delete(job.recipient);
        return failureOf(err, job.recipient);
      }
    },
  };
}
