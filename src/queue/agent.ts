/*
 * The contract between the queue manager and its delivery agents (local now; lmtp, smtp, discard and
 * error with the routing issue). An agent delivers one recipient of one leased entry and reports an
 * outcome; it never touches the queue (the scheduler completes the lease) and never throws for a
 * delivery problem: transient trouble is `deferred`, permanent trouble is `failed`.
 */
import type { BlobId } from '../store/index.js';

export interface DeliveryJob {
  queueId: string;
  /** envelope sender, "" for the null sender */
  sender: string;
  /** the queue recipient address: stable across retries, part of the idempotency key */
  recipient: string;
  /** the queued message bytes, read once per entry and shared by its recipients */
  content: Buffer;
  /** the store's blob of `content` (the queue entry's, or LMTP's for several mailboxes), which a mailbox delivery shares */
  blobId?: BlobId;
  now: number;
}

export interface AgentResult {
  outcome: 'done' | 'deferred' | 'failed';
  /** for the log line, `postqueue -p` and DSNs, e.g. "delivered to mailbox" or "452 4.2.2 <x>: Mailbox full" */
  reason: string;
  /**
   * deferred by trouble of our own store, which says nothing about the recipient: retried after a short
   * wait (STORE_RETRY_MS) instead of the backoff, so mail caught in a database outage moves on soon after
   */
  storeTrouble?: boolean;
}

export interface DeliveryAgent {
  /** the `relay=` of the log line */
  readonly relay: string;
  deliver(job: DeliveryJob): Promise<AgentResult>;
}
