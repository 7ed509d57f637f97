/*
 * One session's view of its selected mailbox (RFC 9051 §2.3.1): the UID ↔ message-number map, flags,
 * MODSEQs, sizes and dates as this session last reported them. Other sessions' changes come from the
 * store's change feed and are folded in by `collect`, which returns the untagged responses to send;
 * expunges stay pending (message numbers unchanged) until the session may announce them. Kept in
 * parallel arrays filled from the store's compact index (each distinct flag set one shared, never
 * mutated array), so a 100,000-message mailbox costs a few MB and lookups are binary searches.
 *
 * SELECT answers from the mailbox row alone (count, UIDNEXT, HIGHESTMODSEQ): the arrays are read on
 * the first command that needs them (`load`), and describe the mailbox as it was at SELECT — messages
 * appended since are left for the next EXISTS, messages expunged since come back as pending expunges —
 * so message numbers agree with the EXISTS the client was given. Large mailboxes' indexes are shared by
 * the process's sessions while unchanged (view-cache.ts).
 */
import type { CompactIndex, Mailbox, Store, UidRange } from '../../store/index.js';
import { formatSet, lowerBound } from '../proto/sequence.js';
import { flagList } from '../proto/response.js';
import { viewCacheOf } from '../view-cache.js';

/** flags of a message expunged before the view was read (never sent as FLAGS of a live message) */
const GONE: readonly string[] = Object.freeze([]);

export interface ViewOptions {
  readOnly: boolean;
}

export interface CollectOptions {
  expunge: boolean;
  condstore: boolean;
  qresync: boolean;
}

export class MailboxView {
  uids: number[] = [];
  flags: string[][] = [];
  modseqs: number[] = [];
  dates: number[] = [];
  sizes: number[] = [];
  /** highest MODSEQ folded into the view */
  modseq: number;
  uidNext: number;
  /** UIDs expunged by others, not announced yet (still numbered) */
  readonly pendingExpunge = new Set<number>();
  /** RFC 5182 saved search result (UIDs) */
  saved: number[] = [];
  /** the change feed signalled something newer than `modseq` */
  dirty = false;
  /** number of messages last announced with EXISTS */
  announced: number;
  /** highest MODSEQ of a message in the arrays (our own writes can be ahead of `modseq`) */
  private maxModseq = 0;
  private loading: Promise<void> | null = null;
  private loaded = false;

  constructor(
    readonly mailbox: Mailbox,
    readonly options: ViewOptions,
  ) {
    this.modseq = mailbox.highestModseq;
    this.uidNext = mailbox.uidNext;
    this.announced = mailbox.messages;
  }

  /** Reads the arrays (once): the mailbox as it was when the view was made, see the file comment. */
  load(store: Store): Promise<void> {
    if (this.loaded) return Promise.resolve();
    this.loading ??= this.read(store).finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async read(store: Store): Promise<void> {
    const cache = viewCacheOf(store);
    let ix = cache.get(this.id, this.modseq);
    if (ix) {
      // exactly the mailbox at SELECT; a change signalled before this view subscribed is found by a sync
      this.dirty = true;
    } else {
      ix = await store.messages.compactIndex(this.id);
      if (ix.highestModseq === this.modseq) cache.put(this.id, ix);
    }
    let gone: number[] = [];
    if (ix.highestModseq > this.modseq) {
      const changes = await store.changes.since(this.id, this.modseq);
      gone = [...new Set(changes.filter((c) => c.kind === 'expunge' && c.uid < this.uidNext).map((c) => c.uid))].sort((a, b) => a - b);
      this.dirty = true;
    }
    if (this.loaded) return;
    const n = ix.uids.length;
    if (gone.length === 0 && (n === 0 || ix.uids[n - 1]! < this.uidNext)) {
      // the usual case, nothing changed since SELECT: whole columns at once
      this.uids = Array.from(ix.uids);
      this.modseqs = Array.from(ix.modseqs);
      this.dates = Array.from(ix.internalDates);
      this.sizes = Array.from(ix.sizes);
      const sets = ix.flagSets;
      this.flags = new Array<string[]>(n);
      for (let k = 0; k < n; k++) this.flags[k] = sets[ix.flags[k]!]!;
      for (let k = 0; k < n; k++) if (ix.modseqs[k]! > this.maxModseq) this.maxModseq = ix.modseqs[k]!;
      this.loaded = true;
      return;
    }
    let g = 0;
    for (let k = 0; k < ix.uids.length; k++) {
      const uid = ix.uids[k]!;
      if (uid >= this.uidNext) break;
      while (g < gone.length && gone[g]! < uid) this.pushGone(gone[g++]!);
      this.pushFrom(ix, k);
    }
    while (g < gone.length) this.pushGone(gone[g++]!);
    this.loaded = true;
  }

  private pushGone(uid: number): void {
    this.uids.push(uid);
    this.flags.push(GONE as string[]);
    this.modseqs.push(this.modseq);
    this.dates.push(0);
    this.sizes.push(0);
    this.pendingExpunge.add(uid);
  }

  private pushFrom(ix: CompactIndex, k: number): void {
    const modseq = ix.modseqs[k]!;
    this.uids.push(ix.uids[k]!);
    this.flags.push(ix.flagSets[ix.flags[k]!]!);
    this.modseqs.push(modseq);
    this.dates.push(ix.internalDates[k]!);
    this.sizes.push(ix.sizes[k]!);
    if (modseq > this.maxModseq) this.maxModseq = modseq;
  }

  get id(): number {
    return this.mailbox.id;
  }
  get readOnly(): boolean {
    return this.options.readOnly;
  }
  get count(): number {
    return this.loaded ? this.uids.length : this.announced;
  }
  get lastUid(): number {
    return this.uids.length > 0 ? this.uids[this.uids.length - 1]! : 0;
  }
  get highestModseq(): number {
    // our own writes can be ahead of the last sync
    return Math.max(this.modseq, this.maxModseq);
  }

  /** 0-based index of `uid`, or -1 */
  indexOf(uid: number): number {
    const i = lowerBound(this.uids, uid);
    return i < this.uids.length && this.uids[i] === uid ? i : -1;
  }

  /** UID ranges covering exactly the given view indexes (ascending): store calls never touch unseen UIDs. */
  rangesOf(indexes: readonly number[]): UidRange[] {
    const out: UidRange[] = [];
    let i = 0;
    while (i < indexes.length) {
      let j = i;
      while (j + 1 < indexes.length && indexes[j + 1] === indexes[j]! + 1) j++;
      out.push({ from: this.uids[indexes[i]!]!, to: this.uids[indexes[j]!]! });
      i = j + 1;
    }
    return out;
  }

  setFlags(index: number, flags: string[], modseq: number): void {
    this.flags[index] = flags;
    if (modseq > this.modseqs[index]!) this.modseqs[index] = modseq;
    if (modseq > this.maxModseq) this.maxModseq = modseq;
  }

  /** Removes the messages with these UIDs; returns their former message numbers, descending-safe order. */
  remove(uids: Iterable<number>): { seqs: number[]; uids: number[] } {
    const gone = new Set<number>();
    for (const u of uids) if (this.indexOf(u) >= 0) gone.add(u);
    const seqs: number[] = [];
    const removed: number[] = [];
    if (gone.size === 0) return { seqs, uids: removed };
    const keep = (_: unknown, i: number): boolean => !gone.has(this.uids[i]!);
    // EXPUNGE numbers are each relative to the previous removal: report in order, counting the removed
    let shift = 0;
    for (let i = 0; i < this.uids.length; i++) {
      const u = this.uids[i]!;
      if (gone.has(u)) {
        seqs.push(i + 1 - shift);
        removed.push(u);
        shift++;
        this.pendingExpunge.delete(u);
      }
    }
    this.flags = this.flags.filter(keep);
    this.modseqs = this.modseqs.filter(keep);
    this.dates = this.dates.filter(keep);
    this.sizes = this.sizes.filter(keep);
    this.uids = this.uids.filter((u) => !gone.has(u));
    this.announced = this.uids.length;
    this.saved = this.saved.filter((u) => !gone.has(u));
    return { seqs, uids: removed };
  }

  /** Untagged lines announcing removals (EXPUNGE, or VANISHED under QRESYNC). */
  static expungeLines(removed: { seqs: number[]; uids: number[] }, qresync: boolean): string[] {
    if (removed.uids.length === 0) return [];
    if (qresync) return [`* VANISHED ${formatSet([...removed.uids].sort((a, b) => a - b))}\r\n`];
    return removed.seqs.map((s) => `* ${s} EXPUNGE\r\n`);
  }

  /**
   * Folds in what the change feed has since `modseq` and returns the untagged responses to send now.
   * EXISTS for new messages, FETCH FLAGS for changed ones, and (when allowed) EXPUNGE/VANISHED.
   */
  async collect(store: Store, o: CollectOptions): Promise<string[]> {
    const lines: string[] = [];
    await this.load(store);
    const changes = await store.changes.since(this.id, this.modseq);
    this.dirty = false;
    let newFrom = 0;
    const flagged = new Map<number, { flags: string[]; modseq: number }>();
    for (const c of changes) {
      if (c.modseq > this.modseq) this.modseq = c.modseq;
      if (c.kind === 'append') {
        if (c.uid > this.lastUid && (newFrom === 0 || c.uid < newFrom)) newFrom = c.uid;
      } else if (c.kind === 'flags') {
        flagged.set(c.uid, { flags: c.flags, modseq: c.modseq });
      } else {
        if (this.indexOf(c.uid) >= 0) this.pendingExpunge.add(c.uid);
        flagged.delete(c.uid);
      }
    }
    for (const [uid, f] of flagged) {
      const i = this.indexOf(uid);
      if (i < 0 || this.pendingExpunge.has(uid)) continue;
      const same = sameFlags(this.flags[i]!, f.flags) && (!o.condstore || this.modseqs[i]! >= f.modseq);
      this.setFlags(i, f.flags, f.modseq);
      if (same) continue;
      const modseq = o.condstore ? ` MODSEQ (${this.modseqs[i]})` : '';
      lines.push(`* ${i + 1} FETCH (UID ${uid} FLAGS ${flagList(this.flags[i]!)}${modseq})\r\n`);
    }
    if (o.expunge && this.pendingExpunge.size > 0) {
      lines.push(...MailboxView.expungeLines(this.remove([...this.pendingExpunge]), o.qresync));
    }
    if (newFrom > 0) {
      const ix = await store.messages.compactIndex(this.id, Math.max(newFrom, this.lastUid + 1));
      for (let k = 0; k < ix.uids.length; k++) {
        if (ix.uids[k]! <= this.lastUid) continue;
        this.pushFrom(ix, k);
        if (ix.modseqs[k]! > this.modseq) this.modseq = ix.modseqs[k]!;
      }
      this.uidNext = Math.max(this.uidNext, this.lastUid + 1);
    }
    if (this.uids.length !== this.announced) {
      this.announced = this.uids.length;
      lines.push(`* ${this.uids.length} EXISTS\r\n`);
    }
    return lines;
  }
}

export function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => set.has(f.toLowerCase()));
}
