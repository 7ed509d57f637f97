/*
 * One session's view of its selected mailbox (RFC 9051 §2.3.1): the UID ↔ message-number map, flags,
 * MODSEQs, sizes and dates as this session last reported them. Other sessions' changes come from the
 * store's change feed and are folded in by `collect`, which returns the untagged responses to send;
 * expunges stay pending (message numbers unchanged) until the session may announce them. Kept in
 * parallel arrays filled from the store's compact index (each distinct flag set one shared, never
 * mutated array), so a 100,000-message mailbox costs a few MB and lookups are binary searches.
 */
import type { Mailbox, MessageIndex, Store, UidRange } from '../../store/index.js';
import { formatSet, lowerBound } from '../proto/sequence.js';
import { flagList } from '../proto/response.js';

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

  constructor(
    readonly mailbox: Mailbox,
    index: MessageIndex,
    readonly options: ViewOptions,
  ) {
    this.uids = index.uids;
    this.modseqs = index.modseqs;
    this.dates = index.internalDates;
    this.sizes = index.sizes;
    this.flags = index.flags.map((f) => index.flagSets[f]!);
    this.modseq = mailbox.highestModseq;
    this.uidNext = Math.max(mailbox.uidNext, this.lastUid + 1);
    this.announced = this.uids.length;
  }

  get id(): number {
    return this.mailbox.id;
  }
  get readOnly(): boolean {
    return this.options.readOnly;
  }
  get count(): number {
    return this.uids.length;
  }
  get lastUid(): number {
    return this.uids.length > 0 ? this.uids[this.uids.length - 1]! : 0;
  }
  get highestModseq(): number {
    let m = this.modseq;
    // our own writes can be ahead of the last sync
    for (const x of this.modseqs) if (x > m) m = x;
    return m;
  }

  private push(ix: MessageIndex, k: number): void {
    this.uids.push(ix.uids[k]!);
    this.flags.push(ix.flagSets[ix.flags[k]!]!);
    this.modseqs.push(ix.modseqs[k]!);
    this.dates.push(ix.internalDates[k]!);
    this.sizes.push(ix.sizes[k]!);
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
      const ix = await store.messages.index(this.id, [{ from: Math.max(newFrom, this.lastUid + 1), to: Number.MAX_SAFE_INTEGER }]);
      for (let k = 0; k < ix.uids.length; k++) {
        if (ix.uids[k]! <= this.lastUid) continue;
        this.push(ix, k);
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
