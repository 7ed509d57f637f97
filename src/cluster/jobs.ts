/*
 * The singleton jobs a Cartero cluster runs on one node at a time (see singleton.ts): blob garbage
 * collection (unreferenced blobs after a grace period, so a blob written just before the commit that
 * references it is never taken), pruning of registry rows of nodes long dead, and pruning of queue
 * receipts older than any sender's queue lifetime, and pruning of delivery digests past the duplicate
 * suppression window. Each is a thin call into the store API, safe if two nodes overlap for a moment
 * (both are transactional deletes of rows nobody uses). Errors propagate to the runner, which logs them.
 */
import type { Store } from '../store/api.js';
import type { SingletonJob } from './singleton.js';

export interface BlobCollectionOptions {
  /** default 10 minutes */
  intervalMs?: number;
  /** unreferenced blobs younger than this are kept (a commit may be about to reference them); default 1 hour */
  graceMs?: number;
}

export function blobCollectionJob(store: Store, options: BlobCollectionOptions = {}): SingletonJob {
  const graceMs = options.graceMs ?? 60 * 60_000;
  return {
    name: 'blob-gc',
    intervalMs: options.intervalMs ?? 10 * 60_000,
    run: async (now) => {
      const removed = await store.blobs.collect(now, graceMs);
      return removed > 0 ? `${removed} unreferenced blobs removed` : null;
    },
  };
}

export interface NodePruneOptions {
  /** default 1 hour */
  intervalMs?: number;
  /** rows of nodes silent for longer than this are removed; default 7 days */
  deadForMs?: number;
}

export function nodePruneJob(store: Store, options: NodePruneOptions = {}): SingletonJob {
  const deadForMs = options.deadForMs ?? 7 * 86_400_000;
  return {
    name: 'node-prune',
    intervalMs: options.intervalMs ?? 60 * 60_000,
    run: async (now) => {
      const gone = await store.cluster.prune(now - deadForMs);
      return gone.length > 0 ? `removed ${gone.length} nodes silent for over ${Math.round(deadForMs / 1000)} s from the registry: ${gone.join(', ')}` : null;
    },
  };
}

export interface ReceiptPruneOptions {
  /** default 1 hour */
  intervalMs?: number;
  /**
   * receipts older than this are removed (docs/xqueueid.md): no sender retries after its queue lifetime;
   * default 6 days (Postfix's 5-day maximal_queue_lifetime plus a day)
   */
  retentionMs?: number;
}

/** A job that deletes rows recorded before `retentionMs` ago through `prune` and says how many went. */
function pruneJob(name: string, intervalMs: number, retentionMs: number, what: string, prune: (before: number) => Promise<number>): SingletonJob {
  return {
    name,
    intervalMs,
    run: async (now) => {
      const removed = await prune(now - retentionMs);
      return removed > 0 ? `${removed} ${what} older than ${Math.round(retentionMs / 1000)} s removed` : null;
    },
  };
}

/** Queue receipts (XQUEUEID) past the time any sender would still resend the message. */
export function receiptPruneJob(store: Store, options: ReceiptPruneOptions = {}): SingletonJob {
  return pruneJob('receipt-prune', options.intervalMs ?? 60 * 60_000, options.retentionMs ?? 6 * 86_400_000, 'queue receipts', (before) => store.queue.pruneReceipts(before));
}

export interface DigestPruneOptions {
  /** default 1 hour */
  intervalMs?: number;
  /** delivery.duplicate_suppression_window: older digests no longer suppress anything; default 0 (all go) */
  windowMs?: number;
}

/** Delivery digests (NewMessage.deliveryDigest) older than the duplicate suppression window. */
export function digestPruneJob(store: Store, options: DigestPruneOptions = {}): SingletonJob {
  return pruneJob('digest-prune', options.intervalMs ?? 60 * 60_000, options.windowMs ?? 0, 'delivery digests', (before) => store.messages.pruneDigests(before));
}

/** The jobs `cartero serve` runs; `cartero cluster status` lists the holder of each. */
export function defaultSingletonJobs(
  store: Store,
  options: { blobs?: BlobCollectionOptions; nodes?: NodePruneOptions; receipts?: ReceiptPruneOptions; digests?: DigestPruneOptions } = {},
): SingletonJob[] {
  return [blobCollectionJob(store, options.blobs), nodePruneJob(store, options.nodes), receiptPruneJob(store, options.receipts), digestPruneJob(store, options.digests)];
}
