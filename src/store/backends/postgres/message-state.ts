/*
 * What every message write shares: the mailbox row lock, UID/MODSEQ bookkeeping, the exact counters,
 * expunge tombstones, UID range parameters and the quota check.
 * Lock order, everywhere: account (only for quota) -> mailboxes by id -> blobs by id. Helpers here run
 * inside the caller's transaction and never commit. Errors: `not_found`, `over_quota`.
 */
import type { UidRange } from '../../api.js';
import { mergeRanges } from '../../common.js';
import { StoreError } from '../../errors.js';
import type { Sql } from './db.js';
import { validId } from './mailboxes.js';

export interface LockedMailbox {
  id: number;
  accountId: number;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
}

export interface MessageRow {
  uid: number;
  modseq: number;
  flags: string[];
  size: number;
  blob_id: string;
}

export function isSeen(flags: readonly string[]): boolean {
  return flags.some((f) => f.toLowerCase() === '\\seen');
}

/** Locks mailboxes in id order (so two movers in opposite directions cannot deadlock); throws `not_found`. */
export async function lockMailboxes(sql: Sql, ids: readonly number[]): Promise<Map<number, LockedMailbox>> {
  const unique = [...new Set(ids)];
  for (const id of unique) if (!validId(id)) throw new StoreError('not_found', `mailbox ${id} not found`);
  const rows = (
    await sql.query<{ id: number; account_id: number; uid_validity: number; uid_next: number; highest_modseq: number }>(
      'SELECT id, account_id, uid_validity, uid_next, highest_modseq FROM mailboxes WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE',
      [unique],
    )
  ).rows;
  const out = new Map<number, LockedMailbox>();
  for (const r of rows) {
    out.set(r.id, { id: r.id, accountId: r.account_id, uidValidity: r.uid_validity, uidNext: r.uid_next, highestModseq: r.highest_modseq });
  }
  for (const id of unique) if (!out.has(id)) throw new StoreError('not_found', `mailbox ${id} not found`);
  return out;
}

export async function lockMailbox(sql: Sql, id: number): Promise<LockedMailbox> {
  const box = (await lockMailboxes(sql, [id])).get(id);
  if (!box) throw new StoreError('not_found', `mailbox ${id} not found`);
  return box;
}

/** Writes back uid_next / highest_modseq of a locked mailbox and applies counter deltas. */
export async function saveMailbox(sql: Sql, box: LockedMailbox, delta: { messages: number; unseen: number; size: number }): Promise<void> {
  await sql.query(
    `UPDATE mailboxes SET uid_next = $2, highest_modseq = $3, messages = messages + $4, unseen = unseen + $5, size = size + $6
      WHERE id = $1`,
    [box.id, box.uidNext, box.highestModseq, delta.messages, delta.unseen, delta.size],
  );
}

/**
 * Bookkeeping after messages were deleted from a locked mailbox: one tombstone per UID, each with its
 * own MODSEQ (the change feed is strictly ordered), and the counters. Blob references are the caller's.
 */
export async function recordRemoval(sql: Sql, box: LockedMailbox, removed: readonly MessageRow[]): Promise<number[]> {
  if (removed.length === 0) return [];
  const sorted = [...removed].sort((a, b) => a.uid - b.uid);
  const uids = sorted.map((r) => r.uid);
  const modseqs = uids.map(() => ++box.highestModseq);
  await sql.query(
    `INSERT INTO expunges (mailbox_id, uid, modseq) SELECT $1, t.uid, t.modseq FROM unnest($2::bigint[], $3::bigint[]) AS t (uid, modseq)
     ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq`,
    [box.id, uids, modseqs],
  );
  await saveMailbox(sql, box, {
    messages: -sorted.length,
    unseen: -sorted.filter((r) => !isSeen(r.flags)).length,
    size: -sorted.reduce((n, r) => n + r.size, 0),
  });
  return uids;
}

/**
 * Parameters for `JOIN unnest($a::bigint[], $b::bigint[]) AS r (lo, hi) ON m.uid BETWEEN r.lo AND r.hi`:
 * with merged ranges the join yields each message once and the planner walks the primary key per range.
 * `undefined` means every UID.
 */
export function rangeParams(uids: UidRange[] | undefined): [number[], number[]] {
  const ranges = uids === undefined ? [{ from: 1, to: Number.MAX_SAFE_INTEGER }] : mergeRanges(uids);
  return [ranges.map((r) => r.from), ranges.map((r) => r.to)];
}

export function rangeJoin(first: number): string {
  return `JOIN unnest($${first}::bigint[], $${first + 1}::bigint[]) AS r (lo, hi) ON m.uid BETWEEN r.lo AND r.hi`;
}

export interface QuotaHold {
  accountId: number;
  limit: number;
  used: number;
}

/**
 * For an account with a quota, locks the account row and reads its usage, so concurrent writers into any
 * of its mailboxes are checked one after another; null when there is no limit. Must run before the
 * mailbox locks (lock order). `knownLimit` saves a round trip when the caller already read quota_bytes.
 */
export async function holdQuota(sql: Sql, accountId: number, knownLimit?: number | null): Promise<QuotaHold | null> {
  // accounts without a quota (the common case) take no account lock at all
  const limit =
    knownLimit !== undefined
      ? knownLimit
      : (await sql.query<{ quota_bytes: number | null }>('SELECT quota_bytes FROM accounts WHERE id = $1', [accountId])).rows[0]?.quota_bytes ?? null;
  if (limit === null) return null;
  // Lock first, sum after, in separate statements: a statement's snapshot predates its lock wait, so a
  // sum in the locking statement could miss the writer we waited for.
  const row = (await sql.query<{ quota_bytes: number | null }>('SELECT quota_bytes FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [accountId])).rows[0];
  if (!row || row.quota_bytes === null) return null;
  const used = (await sql.query<{ used: number }>('SELECT COALESCE(SUM(size), 0) AS used FROM mailboxes WHERE account_id = $1', [accountId])).rows[0]?.used ?? 0;
  return { accountId, limit: row.quota_bytes, used };
}

export function assertQuota(hold: QuotaHold | null, bytes: number): void {
  if (hold && hold.used + bytes > hold.limit) {
    throw new StoreError('over_quota', `account ${hold.accountId}: ${hold.used} + ${bytes} bytes exceed the quota of ${hold.limit}`);
  }
}

/** The messages of a mailbox within UID ranges, in UID order (the caller holds the mailbox lock). */
export async function messagesIn(sql: Sql, mailboxId: number, uids: UidRange[]): Promise<MessageRow[]> {
  const [lo, hi] = rangeParams(uids);
  return (
    await sql.query<MessageRow>(`SELECT m.uid, m.modseq, m.flags, m.size, m.blob_id FROM messages m ${rangeJoin(2)} WHERE m.mailbox_id = $1 ORDER BY m.uid`, [
      mailboxId,
      lo,
      hi,
    ])
  ).rows;
}
