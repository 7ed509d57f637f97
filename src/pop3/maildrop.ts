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

/** Read-ahead of RETR: messages and bytes read before they are asked for (see Maildrop.content). */
export const READ_AHEAD_MESSAGES = 4;
export const READ_AHEAD_BYTES = 1024 * 1024;

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
  /** reads started ahead of the client, by UID, with their sizes */
  private readonly ahead = new Map<number, { read: Promise<Buffer>; size: number }>();
  private aheadBytes = 0;
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
   * The whole message, read from the store once (verified against its hash there). Clients mostly
   * RETR one message after the other, so the next few (READ_AHEAD_MESSAGES, READ_AHEAD_BYTES) are
   * read now and the store's round trip overlaps with sending this one. A read-ahead that failed is
   * simply read again when asked for, so errors are those of a direct read.
   */
  content(meta: MessageMeta): Promise<Buffer> {
    const early = this.ahead.get(meta.uid);
    let result: Promise<Buffer>;
    if (early) {
      this.ahead.delete(meta.uid);
      this.aheadBytes -= early.size;
      result = early.read.catch(() => this.read(meta.uid));
    } else {
      result = this.read(meta.uid);
    }
    this.readAhead(meta.uid);
    return result;
  }

  private read(uid: number): Promise<Buffer> {
    return this.store.messages.content(this.mailbox.id, uid);
  }

  private readAhead(after: number): void {
    for (const [uid, early] of this.ahead) {
      if (uid > after) continue;
      // the client went back or skipped: what lies behind is not going to be asked for soon
      this.ahead.delete(uid);
      this.aheadBytes -= early.size;
    }
    let k = lowerIndex(this.messages, after + 1);
    for (; k < this.messages.length && this.ahead.size < READ_AHEAD_MESSAGES; k++) {
      const next = this.messages[k]!;
      if (this.ahead.has(next.uid) || this.marked.has(k + 1)) continue;
      if (this.ahead.size > 0 && this.aheadBytes + next.size > READ_AHEAD_BYTES) break;
      const read = this.read(next.uid);
      read.catch(() => undefined);
      this.ahead.set(next.uid, { read, size: next.size });
      this.aheadBytes += next.size;
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
    this.ahead.clear();
    this.aheadBytes = 0;
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
