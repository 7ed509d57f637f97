/*
 * Appending one message: idempotency key, quota, UID/MODSEQ allocation, blob reference, notify.
 * The mailbox row is locked by the allocating UPDATE and held to commit, so appends to one mailbox
 * commit in UID order and a reader never sees a gap. Never adds a blob reference for a duplicate.
 * Errors: `not_found` (mailbox, blob), `over_quota`, `invalid` (flags, no content).
 */
import type { AppendResult, DeliveryDigest, NewMessage } from '../../api.js';
import { appendPrefix, normalizeFlags, sha256 } from '../../common.js';
import { StoreError } from '../../errors.js';
import { refBlobSql, upsertBlobSql } from './blobs.js';
import { notifyMailboxes, type Db, type Sql } from './db.js';
import { validId } from './mailboxes.js';
import { assertQuota, holdQuota, isSeen } from './message-state.js';

/**
 * Claims the key for this transaction. A concurrent claimant waits on the unique index until we commit
 * (then it sees our row and reports a duplicate) or roll back (then it proceeds).
 */
async function claimKey(sql: Sql, accountId: number, key: string, now: number): Promise<AppendResult | null> {
  const inserted = (
    await sql.query(
      `INSERT INTO delivery_keys (account_id, key, mailbox_id, uid, modseq, uid_validity, created_at)
       VALUES ($1, $2, 0, 0, 0, 0, $3) ON CONFLICT DO NOTHING RETURNING 1`,
      [accountId, key, now],
    )
  ).rows;
  if (inserted.length > 0) return null;
  const row = (
    await sql.query<{ uid: number; modseq: number; uid_validity: number }>(
      'SELECT uid, modseq, uid_validity FROM delivery_keys WHERE account_id = $1 AND key = $2',
      [accountId, key],
    )
  ).rows[0];
  if (!row) throw new StoreError('unavailable', `postgres: delivery key ${key} vanished`);
  return { uid: row.uid, modseq: row.modseq, uidValidity: row.uid_validity, duplicate: true };
}

/**
 * Records the digest of a delivery to the account; false when an exact copy was delivered at or after
 * `since`. Two nodes filing the two copies at once: the second INSERT waits for the first's row lock and
 * then sees it (ON CONFLICT), so one of them is filed. Rolled back with the append.
 */
async function claimDigest(sql: Sql, accountId: number, d: DeliveryDigest, now: number): Promise<boolean> {
  const rows = (
    await sql.query(
      `INSERT INTO delivery_digests (account_id, digest, created_at) VALUES ($1, $2, $3)
       ON CONFLICT (account_id, digest) DO UPDATE SET created_at = EXCLUDED.created_at WHERE delivery_digests.created_at < $4
       RETURNING 1`,
      [accountId, d.digest, now, d.since],
    )
  ).rows;
  return rows.length > 0;
}

async function sizeOf(sql: Sql, message: NewMessage, prefix: Buffer | null): Promise<number> {
  if (message.content) return message.content.length;
  const row = (await sql.query<{ size: number }>('SELECT size FROM blobs WHERE id = $1', [message.blobId])).rows[0];
  if (!row) throw new StoreError('not_found', `blob ${message.blobId} not found`);
  return row.size + (prefix?.length ?? 0);
}

function checkInput(message: NewMessage): void {
  if (!message.content && !message.blobId) throw new StoreError('invalid', 'append needs content or a blobId');
  if (message.content && message.blobId && sha256(message.content) !== message.blobId) {
    throw new StoreError('invalid', `append: content does not match blob ${message.blobId}`);
  }
}

export async function appendMessage(db: Db, mailboxId: number, message: NewMessage, now: number): Promise<AppendResult> {
  checkInput(message);
  const prefix = appendPrefix(message);
  const flags = normalizeFlags(message.flags ?? []);
  if (!validId(mailboxId)) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
  return db.tx('messages.append', async (sql) => {
    const box = (
      await sql.query<{ account_id: number; quota_bytes: number | null }>(
        'SELECT m.account_id, a.quota_bytes FROM mailboxes m JOIN accounts a ON a.id = m.account_id WHERE m.id = $1',
        [mailboxId],
      )
    ).rows[0];
    if (!box) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
    if (message.idempotencyKey !== undefined) {
      const duplicate = await claimKey(sql, box.account_id, message.idempotencyKey, now);
      if (duplicate) return duplicate;
    }
    if (message.deliveryDigest !== undefined && !(await claimDigest(sql, box.account_id, message.deliveryDigest, now))) {
      return { uid: 0, modseq: 0, uidValidity: 0, duplicate: true };
    }
    const size = await sizeOf(sql, message, prefix);
    assertQuota(await holdQuota(sql, box.account_id, box.quota_bytes), size);
    const alloc = await allocate(sql, mailboxId, isSeen(flags), size);
    await insertMessage(sql, message, { mailboxId, accountId: box.account_id, flags, size, prefix, now, ...alloc });
    return { uid: alloc.uid, modseq: alloc.modseq, uidValidity: alloc.uidValidity, duplicate: false };
  });
}

/**
 * Locks the mailbox row until COMMIT and takes the next UID and MODSEQ. Every append to this mailbox
 * waits from here on, so what follows is kept to one statement.
 */
async function allocate(sql: Sql, mailboxId: number, seen: boolean, size: number): Promise<{ uid: number; modseq: number; uidValidity: number }> {
  const row = (
    await sql.query<{ uid: number; modseq: number; uid_validity: number }>(
      `UPDATE mailboxes
          SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1,
              messages = messages + 1, unseen = unseen + $2, size = size + $3
        WHERE id = $1
       RETURNING uid_next - 1 AS uid, highest_modseq AS modseq, uid_validity`,
      [mailboxId, seen ? 0 : 1, size],
    )
  ).rows[0];
  if (!row) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
  return { uid: row.uid, modseq: row.modseq, uidValidity: row.uid_validity };
}

interface Placement {
  mailboxId: number;
  accountId: number;
  uid: number;
  modseq: number;
  uidValidity: number;
  flags: string[];
  size: number;
  now: number;
  prefix: Buffer | null;
}

async function insertMessage(sql: Sql, message: NewMessage, p: Placement): Promise<void> {
  const params: unknown[] = [
    p.mailboxId,
    p.uid,
    p.modseq,
    p.flags,
    message.internalDate ?? p.now,
    p.size,
    message.content ? sha256(message.content) : message.blobId,
    p.uidValidity,
    p.accountId,
    message.idempotencyKey ?? null,
    message.structure ?? null,
    p.prefix,
  ];
  if (message.content) params.push(message.content, p.now);
  const inserted = (await sql.query(insertStatement(message), params)).rows;
  // only possible with blobId: the blob was collected since sizeOf() saw it
  if (inserted.length === 0) throw new StoreError('not_found', `blob ${message.blobId} not found`);
  notifyMailboxes(sql, [{ id: p.mailboxId, highestModseq: p.modseq }]);
}

/**
 * Blob reference, message row and delivery key in one statement, so that the mailbox lock is
 * held for as few round trips as possible. The blob is locked after the mailbox, as everywhere.
 * Yields one row when the message was inserted, none when a `blobId` does not exist.
 */
function insertStatement(message: NewMessage): string {
  const blob = message.content ? upsertBlobSql('$7', '$6', '$13', '$14') : refBlobSql('$7');
  return `WITH blob AS (${blob}),
     ins AS (
       INSERT INTO messages (mailbox_id, uid, modseq, created_modseq, flags, internal_date, size, blob_id, structure, prefix)
       SELECT $1, $2, $3, $3, $4, $5, $6, blob.id, $11::text, $12::bytea FROM blob RETURNING 1
     ), claimed AS (
       UPDATE delivery_keys SET mailbox_id = $1, uid = $2, modseq = $3, uid_validity = $8
        WHERE account_id = $9 AND key = $10 RETURNING 1
     )
     SELECT 1 FROM ins`;
}
