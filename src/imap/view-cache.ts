/*
 * Compact message indexes of large mailboxes, shared by the sessions of one process (as Dovecot's
 * sessions share its index files): a client that reconnects, or a second device of the same user, gets
 * its view without reading 100,000 rows again. An entry is keyed by the mailbox's HIGHESTMODSEQ, which
 * every change raises, so a hit is exactly the mailbox as it was at that MODSEQ; a later change simply
 * misses. Entries are never mutated (views copy them). Bounded in bytes, least recently used first out.
 * The distinct flag sets SELECT lists are kept the same way, for every mailbox (bounded in count), so a
 * repeated SELECT of an unchanged mailbox is one store call.
 */
import type { CompactIndex, Store } from '../store/index.js';

/** smaller mailboxes are read in a few milliseconds: not worth the memory */
export const VIEW_CACHE_MIN_MESSAGES = 2000;
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

interface Entry {
  modseq: number;
  index: CompactIndex;
  bytes: number;
}

/** mailboxes whose flag sets are kept (a few strings each) */
const MAX_FLAG_SET_ENTRIES = 10_000;

export class ViewCache {
  private readonly entries = new Map<number, Entry>();
  private bytes = 0;
  private readonly flagSetEntries = new Map<number, { modseq: number; sets: string[][] }>();

  /** The distinct flag sets of `mailboxId` at HIGHESTMODSEQ `modseq` (SELECT's FLAGS), or null. */
  flagSets(mailboxId: number, modseq: number): string[][] | null {
    const e = this.flagSetEntries.get(mailboxId);
    return e && e.modseq === modseq ? e.sets : null;
  }

  putFlagSets(mailboxId: number, modseq: number, sets: string[][]): void {
    this.flagSetEntries.delete(mailboxId);
    if (this.flagSetEntries.size >= MAX_FLAG_SET_ENTRIES) this.flagSetEntries.delete(this.flagSetEntries.keys().next().value!);
    this.flagSetEntries.set(mailboxId, { modseq, sets });
  }

  constructor(private readonly maxBytes = DEFAULT_MAX_BYTES) {}

  /** The index of `mailboxId` as of HIGHESTMODSEQ `modseq`, or null. */
  get(mailboxId: number, modseq: number): CompactIndex | null {
    const e = this.entries.get(mailboxId);
    if (!e || e.modseq !== modseq) return null;
    // most recently used goes last
    this.entries.delete(mailboxId);
    this.entries.set(mailboxId, e);
    return e.index;
  }

  /** Keeps `index` (read in one snapshot with its highestModseq) if the mailbox is large enough. */
  put(mailboxId: number, index: CompactIndex): void {
    const n = index.uids.length;
    if (n < VIEW_CACHE_MIN_MESSAGES) return;
    const bytes = n * (8 * 4 + 4) + index.flagSets.length * 64;
    if (bytes > this.maxBytes) return;
    this.drop(mailboxId);
    while (this.bytes + bytes > this.maxBytes && this.entries.size > 0) this.drop(this.entries.keys().next().value!);
    this.entries.set(mailboxId, { modseq: index.highestModseq, index, bytes });
    this.bytes += bytes;
  }

  get size(): number {
    return this.entries.size;
  }

  private drop(mailboxId: number): void {
    const e = this.entries.get(mailboxId);
    if (!e) return;
    this.entries.delete(mailboxId);
    this.bytes -= e.bytes;
  }
}

const caches = new WeakMap<Store, ViewCache>();

/** The cache of the sessions on `store` (one per store instance, so separate stores never mix). */
export function viewCacheOf(store: Store): ViewCache {
  let c = caches.get(store);
  if (!c) caches.set(store, (c = new ViewCache()));
  return c;
}
