/*
 * The maildrop of one POP3 session: the account's INBOX as a snapshot of its messages taken at login
 * (RFC 1939 numbers them 1..n for the whole session), the deletion marks, and the UPDATE state that
 * applies them. Talks to the store API only. Nothing is written to the store before QUIT except the
 * \Seen flags of retrieved messages, which are applied when the session ends (QUIT or a dropped
 * connection); deletions happen only at QUIT, and exactly the marked UIDs are expunged. Store errors
 * propagate as StoreError for the session to map to -ERR [SYS/TEMP] / [SYS/PERM].
 */
import type { Account, Mailbox, MessageMeta, Store, UidRange } from '../store/index.js';
import type { MaildropLock, MaildropLocks } from './lock.js';

export const MAILDROP_NAME = 'INBOX';

/**
 * Read-ahead of RETR (see Maildrop.content): batches of one store round trip, the first small (the
 * client waits for it), each next one twice as large up to READ_AHEAD_BYTES, at most
 * READ_AHEAD_MESSAGES messages each; a new batch starts when less than one batch is left ahead, so at
 * most two batches' bytes are held.
 */
export const READ_AHEAD_FIRST_BYTES = 64 * 1024;
export const READ_AHEAD_BYTES = 512 * 1024;
export const READ_AHEAD_MESSAGES = 256;

/** A message being read (or read) ahead of the client, as part of one batch. */
interface Early {
  size: number;
  /** the bytes once the batch has them; stays null for a message gone or a batch that failed */
  bytes: Buffer | null;
  settled: boolean;
  /** settles (never rejects) when the batch does */
  done: Promise<void>;
}

export type Lookup = { kind: 'ok'; meta: MessageMeta } | { kind: 'none' } | { kind: 'deleted' };

export interface Stat {
  count: number;
  size: number;
}

export type OpenResult =
  | { kind: 'ok'; maildrop: Maildrop }
  /** the account or its INBOX does not exist */
  | { kind: 'missing' }
  /** another session holds the maildrop */
  | { kind: 'in_use' };

export interface UpdateResult {
  deleted: number;
  /** UIDs we marked that were already gone (expunged by IMAP meanwhile) */
  missing: number;
}

/** Consecutive UIDs as ranges, so one store call covers many messages. */
export function uidRanges(uids: Iterable<number>): UidRange[] {
  const sorted = [...uids].sort((a, b) => a - b);
  const out: UidRange[] = [];
  for (const uid of sorted) {
    const last = out[out.length - 1];
    if (last && uid === last.to + 1) last.to = uid;
    else if (!last || uid > last.to) out.push({ from: uid, to: uid });
  }
  return out;
}

export class Maildrop {
  private readonly marked = new Set<number>();
  private readonly seen = new Set<number>();
  /** reads started ahead of the client, by UID in ascending order (a window after the last message asked for) */
  private readonly ahead = new Map<number, Early>();
  private aheadBytes = 0;
  /** index in `messages` of the next message the window would take in */
  private aheadNext = 0;
  /** bytes of the next batch */
  private batchBytes = READ_AHEAD_FIRST_BYTES;
  private closed = false;
  /** messages and octets sent by RETR (for the logout line) */
  retrieved = 0;
  retrievedBytes = 0;
  /** TOP commands answered */
  tops = 0;

  constructor(
    private readonly store: Store,
    readonly account: Account,
    readonly mailbox: Mailbox,
    /** sorted by UID; message n is messages[n - 1] */
    readonly messages: readonly MessageMeta[],
    private readonly lock: MaildropLock,
  ) {}

  get(n: number): Lookup {
    const meta = Number.isInteger(n) && n >= 1 ? this.messages[n - 1] : undefined;
    if (!meta) return { kind: 'none' };
    return this.marked.has(n) ? { kind: 'deleted' } : { kind: 'ok', meta };
  }

  /** messages not marked deleted, and their octets */
  stat(): Stat {
    let count = 0;
    let size = 0;
    this.messages.forEach((m, i) => {
      if (!this.marked.has(i + 1)) {
        count++;
        size += m.size;
      }
    });
    return { count, size };
  }

  /** [number, meta] of every message not marked deleted */
  listing(): [number, MessageMeta][] {
    const out: [number, MessageMeta][] = [];
    this.messages.forEach((m, i) => {
      if (!this.marked.has(i + 1)) out.push([i + 1, m]);
    });
    return out;
  }

  /** Stable across sessions and consistent with IMAP: `<uidvalidity>.<uid>`. */
  uidl(meta: MessageMeta): string {
    return `${this.mailbox.uidValidity}.${meta.uid}`;
  }

  mark(n: number): void {
    this.marked.add(n);
  }

  reset(): void {
    this.marked.clear();
  }

  get markedCount(): number {
    return this.marked.size;
  }

  /**
   * The whole message, read from the store once (verified against its hash there): the Buffer itself
   * when the read-ahead already has it, so pipelined RETRs are answered back to back without a turn of
   * the event loop, else a promise. Clients mostly RETR one message after the other, so the following
   * ones are read ahead in batches of one store round trip each (READ_AHEAD_*); a client that goes back
   * or jumps restarts the read-ahead at the message it asked for. A message the batch did not return
   * (gone, or the batch failed) is read again on its own, so errors are those of a direct read.
   */
  content(meta: MessageMeta): Buffer | Promise<Buffer> {
    let early = this.ahead.get(meta.uid);
    if (!early) {
      this.clearAhead();
      this.aheadNext = lowerIndex(this.messages, meta.uid);
      this.batchBytes = READ_AHEAD_FIRST_BYTES;
      this.topUp(true);
      early = this.ahead.get(meta.uid);
      if (!early) return this.read(meta.uid);
    }
    // what lies before it was skipped by the client (or is this one): not going to be asked for soon
    for (const [uid, e] of this.ahead) {
      if (uid > meta.uid) break;
      this.ahead.delete(uid);
      this.aheadBytes -= e.size;
    }
    this.topUp(false);
    const taken = early;
    if (taken.bytes) return taken.bytes;
    if (taken.settled) return this.read(meta.uid);
    return taken.done.then(() => taken.bytes ?? this.read(meta.uid));
  }

  private read(uid: number): Promise<Buffer> {
    return this.store.messages.content(this.mailbox.id, uid);
  }

  private clearAhead(): void {
    this.ahead.clear();
    this.aheadBytes = 0;
  }

  /** Starts one batch read after what is read ahead already (`force`: however much that is). */
  private topUp(force: boolean): void {
    if (this.closed || (!force && this.aheadBytes >= this.batchBytes)) return;
    const batch: MessageMeta[] = [];
    let bytes = 0;
    while (this.aheadNext < this.messages.length && batch.length < READ_AHEAD_MESSAGES) {
      const k = this.aheadNext;
      const next = this.messages[k]!;
      if (this.marked.has(k + 1)) {
        this.aheadNext++;
        continue;
      }
      // always at least one message, however large (with `force`, the one asked for)
      if (batch.length > 0 && bytes + next.size > this.batchBytes) break;
      batch.push(next);
      bytes += next.size;
      this.aheadNext++;
    }
    this.batchBytes = Math.min(this.batchBytes * 2, READ_AHEAD_BYTES);
    if (batch.length === 0) return;
    const entries: Early[] = [];
    const settle = (found: readonly (Buffer | null)[] | null): void => {
      entries.forEach((e, k) => {
        e.bytes = found?.[k] ?? null;
        e.settled = true;
      });
    };
    const done = this.store.messages.contents(this.mailbox.id, batch.map((m) => m.uid)).then(settle, () => settle(null));
    for (const m of batch) {
      const e: Early = { size: m.size, bytes: null, settled: false, done };
      entries.push(e);
      this.ahead.set(m.uid, e);
      this.aheadBytes += m.size;
    }
  }

  /** A RETR was answered in full: count it and remember to set \Seen. */
  noteRetrieved(meta: MessageMeta): void {
    this.retrieved++;
    this.retrievedBytes += meta.size;
    if (!meta.flags.includes('\\Seen')) this.seen.add(meta.uid);
  }

  /** UPDATE (RFC 1939 §6): \Deleted on exactly the marked UIDs, expunge them, set \Seen on the retrieved rest. */
  async update(): Promise<UpdateResult> {
    const uids = [...this.marked].map((n) => this.messages[n - 1]!.uid);
    for (const uid of uids) this.seen.delete(uid);
    let expunged: number[] = [];
    if (uids.length > 0) {
      const ranges = uidRanges(uids);
      await this.store.messages.setFlags(this.mailbox.id, ranges, 'add', ['\\Deleted']);
      expunged = await this.store.messages.expunge(this.mailbox.id, ranges);
    }
    await this.flushSeen();
    return { deleted: expunged.length, missing: uids.length - expunged.length };
  }

  /** The session ended without QUIT: nothing is deleted, retrieved messages still become \Seen. */
  async abandon(): Promise<void> {
    await this.flushSeen();
  }

  private async flushSeen(): Promise<void> {
    if (this.seen.size === 0) return;
    const ranges = uidRanges(this.seen);
    this.seen.clear();
    await this.store.messages.setFlags(this.mailbox.id, ranges, 'add', ['\\Seen']);
  }

  /** Releases the maildrop lock (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearAhead();
    await this.lock.release();
  }
}

/** Index of the first message whose UID is >= uid (messages are sorted by UID). */
function lowerIndex(messages: readonly MessageMeta[], uid: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (messages[mid]!.uid < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Looks up the account's INBOX, locks it and takes the snapshot. The lock is released on any failure. */
export async function openMaildrop(store: Store, locks: MaildropLocks, address: string): Promise<OpenResult> {
  const account = await store.directory.getAccount(address);
  if (!account) return { kind: 'missing' };
  const first = await store.mailboxes.get(account.id, MAILDROP_NAME);
  if (!first) return { kind: 'missing' };
  const lock = await locks.acquire(first.id);
  if (!lock) return { kind: 'in_use' };
  try {
    // Read again under the lock: the snapshot must not predate a session that just ended.
    const mailbox = (await store.mailboxes.getById(first.id)) ?? first;
    const messages = await store.messages.list(mailbox.id);
    return { kind: 'ok', maildrop: new Maildrop(store, account, mailbox, messages, lock) };
  } catch (err) {
    await lock.release();
    throw err;
  }
}
