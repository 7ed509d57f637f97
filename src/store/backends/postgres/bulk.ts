/*
 * Bulk rows of the postgres backend (BulkStore in api.ts): messages read as stored, and mailboxes,
 * messages and queue entries written as given, for `cartero store migrate`. Each call is one transaction;
 * rows are checked first (bulk-common.ts). Never allocates a UID or MODSEQ and sends no NOTIFY: the
 * target is not served yet. Takes locks in the usual order (account, mailbox, blobs by id).
 */
import type { BulkMailbox, BulkMessage, BulkQueueEntry, BulkStore, Mailbox } from '../../api.js';
import { blobPart, checkBulkMailbox, checkBulkMessages, checkBulkQueueEntry } from '../../bulk-common.js';
import { sha256, storedPrefix } from '../../common.js';
import { StoreError } from '../../errors.js';
import type { Db, Sql } from './db.js';
import { toMailbox, validId, type MailboxRow } from './mailboxes.js';

const MAILBOX_COLUMNS = 'id, account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq, messages, unseen, size';

interface ExportRow {
  uid: number;
  modseq: number;
  created_modseq: number;
  flags: string[];
  internal_date: number;
  size: number;
  blob_id: string;
  prefix: Buffer | null;
  structure: string | null;
  idempotency_key: string | null;
}

/** Stores each distinct content once and takes one reference per use, blobs locked in id order. */
async function refContents(sql: Sql, contents: readonly { id: string; content: Buffer }[], now: number): Promise<void> {
  const uses = new Map<string, { content: Buffer; n: number }>();
  for (const c of contents) {
    const u = uses.get(c.id);
    if (u) u.n++;
    else uses.set(c.id, { content: c.content, n: 1 });
  }
  for (const id of [...uses.keys()].sort()) {
    const u = uses.get(id)!;
    await sql.query(
      `INSERT INTO blobs (id, size, content, refcount, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET refcount = blobs.refcount + EXCLUDED.refcount`,
      [id, u.content.length, u.content, u.n, now],
    );
  }
}

const isSeen = (flags: readonly string[]) => flags.some((f) => f.toLowerCase() === '\\seen');

export class PgBulk implements BulkStore {
  constructor(private readonly db: Db) {}

  async exportMessages(mailboxId: number, afterUid: number, limit: number): Promise<BulkMessage[]> {
    if (!validId(mailboxId) || !Number.isSafeInteger(afterUid) || !(limit > 0)) return [];
    const rows = await this.db.query<ExportRow>(
      'bulk.exportMessages',
      `SELECT m.uid, m.modseq, m.created_modseq, m.flags, m.internal_date, m.size, m.blob_id, m.prefix, m.structure,
              (SELECT k.key FROM mailboxes b JOIN delivery_keys k ON k.account_id = b.account_id
                WHERE b.id = m.mailbox_id AND k.mailbox_id = m.mailbox_id AND k.uid = m.uid LIMIT 1) AS idempotency_key
         FROM messages m WHERE m.mailbox_id = $1 AND m.uid > $2 ORDER BY m.uid LIMIT $3`,
      [mailboxId, Math.max(0, afterUid), Math.floor(limit)],
    );
    return rows.map((r) => ({
      uid: r.uid,
      modseq: r.modseq,
      createdModseq: r.created_modseq,
      flags: r.flags,
      internalDate: r.internal_date,
      size: r.size,
      blobId: r.blob_id,
      prefix: r.prefix,
      structure: r.structure,
      idempotencyKey: r.idempotency_key,
    }));
  }

  async importMailbox(accountId: number, mailbox: BulkMailbox): Promise<Mailbox> {
    const m = checkBulkMailbox(mailbox);
    if (!validId(accountId)) throw new StoreError('not_found', `account ${accountId} not found`);
    return this.db.tx('bulk.importMailbox', async (sql) => {
      // a mailbox created later in this account must never get this UIDVALIDITY again
      const account = (await sql.query('UPDATE accounts SET last_uid_validity = GREATEST(last_uid_validity, $2) WHERE id = $1 RETURNING id', [accountId, m.uidValidity])).rows;
      if (account.length === 0) throw new StoreError('not_found', `account ${accountId} not found`);
      const exists = (await sql.query('SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2', [accountId, m.name])).rows;
      if (exists.length > 0) throw new StoreError('exists', `mailbox ${m.name} exists`);
      const row = (
        await sql.query<MailboxRow>(
          `INSERT INTO mailboxes (account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${MAILBOX_COLUMNS}`,
          [accountId, m.name, m.specialUse, m.subscribed, m.uidValidity, m.uidNext, m.highestModseq],
        )
      ).rows[0];
      if (!row) throw new StoreError('unavailable', `postgres: mailbox ${m.name} was not inserted`);
      if (m.expunged.length > 0) {
        await sql.query('INSERT INTO expunges (mailbox_id, uid, modseq) SELECT $1, u, s FROM unnest($2::bigint[], $3::bigint[]) AS e (u, s)', [
          row.id,
          m.expunged.map((e) => e.uid),
          m.expunged.map((e) => e.modseq),
        ]);
      }
      return toMailbox(row);
    });
  }

  async importMessages(mailboxId: number, messages: (BulkMessage & { content: Buffer })[]): Promise<void> {
    if (!validId(mailboxId)) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
    if (messages.length === 0) return;
    await this.db.tx('bulk.importMessages', async (sql) => {
      const box = (
        await sql.query<{ account_id: number; name: string; uid_next: number; highest_modseq: number; uid_validity: number }>(
          'SELECT account_id, name, uid_next, highest_modseq, uid_validity FROM mailboxes WHERE id = $1 FOR UPDATE',
          [mailboxId],
        )
      ).rows[0];
      if (!box) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
      const flags = checkBulkMessages(messages, { uidNext: box.uid_next, highestModseq: box.highest_modseq });
      const uids = messages.map((m) => m.uid);
      const taken = (
        await sql.query<{ uid: number }>(
          'SELECT uid FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) UNION ALL SELECT uid FROM expunges WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) LIMIT 1',
          [mailboxId, uids],
        )
      ).rows[0];
      if (taken) throw new StoreError('exists', `UID ${taken.uid} of mailbox ${box.name} is taken or expunged`);
      const now = Date.now();
      const keyed = messages.filter((m) => m.idempotencyKey !== null);
      if (keyed.length > 0) {
        const claimed = (
          await sql.query(
            `INSERT INTO delivery_keys (account_id, key, mailbox_id, uid, modseq, uid_validity, created_at)
             SELECT $1, k, $2, u, s, $3, $4 FROM unnest($5::text[], $6::bigint[], $7::bigint[]) AS d (k, u, s)
             ON CONFLICT DO NOTHING RETURNING 1`,
            [box.account_id, mailboxId, box.uid_validity, now, keyed.map((m) => m.idempotencyKey), keyed.map((m) => m.uid), keyed.map((m) => m.createdModseq)],
          )
        ).rows;
        if (claimed.length !== keyed.length) throw new StoreError('exists', `an idempotency key of mailbox ${box.name} is taken`);
      }
      await refContents(
        sql,
        messages.map((m) => ({ id: m.blobId, content: blobPart(m) })),
        now,
      );
      const rows = messages.map((m, i) => ({
        uid: m.uid,
        modseq: m.modseq,
        created_modseq: m.createdModseq,
        flags: flags[i] ?? [],
        internal_date: m.internalDate,
        size: m.content.length,
        blob_id: m.blobId,
        prefix: storedPrefix(m.prefix)?.toString('base64') ?? null,
        structure: m.structure,
      }));
      await sql.query(
        `INSERT INTO messages (mailbox_id, uid, modseq, created_modseq, flags, internal_date, size, blob_id, structure, prefix)
         SELECT $1, r.uid, r.modseq, r.created_modseq, r.flags, r.internal_date, r.size, r.blob_id, r.structure, decode(r.prefix, 'base64')
           FROM jsonb_to_recordset($2::jsonb) AS r (uid bigint, modseq bigint, created_modseq bigint, flags text[], internal_date bigint, size bigint, blob_id text, structure text, prefix text)`,
        [mailboxId, JSON.stringify(rows)],
      );
      const unseen = rows.filter((r) => !isSeen(r.flags)).length;
      const size = rows.reduce((n, r) => n + r.size, 0);
      await sql.query('UPDATE mailboxes SET messages = messages + $2, unseen = unseen + $3, size = size + $4 WHERE id = $1', [mailboxId, rows.length, unseen, size]);
    });
  }

  async importQueueEntry(entry: BulkQueueEntry, content: Buffer): Promise<void> {
    const e = checkBulkQueueEntry(entry);
    if (!Buffer.isBuffer(content)) throw new StoreError('invalid', `queue entry ${e.id}: no content`);
    const blobId = sha256(content);
    await this.db.tx('bulk.importQueueEntry', async (sql) => {
      const exists = (await sql.query('SELECT 1 FROM queue_entries WHERE id = $1', [e.id])).rows;
      if (exists.length > 0) throw new StoreError('exists', `queue entry ${e.id} exists`);
      await refContents(sql, [{ id: blobId, content }], Date.now());
      await sql.query(
        `INSERT INTO queue_entries (id, sender, meta, blob_id, size, received_at, state, due_at, attempts)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)`,
        [e.id, e.sender, JSON.stringify(e.meta), blobId, content.length, e.receivedAt, e.state, e.dueAt, e.attempts],
      );
      await sql.query(
        `INSERT INTO queue_recipients (entry_id, address, orcpt, notify, state, attempts, last_error)
         SELECT $1, r.address, r.orcpt, r.notify, r.state, r.attempts, r.last_error
           FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (address text, orcpt text, notify text[], state text, attempts integer, last_error text))
                WITH ORDINALITY AS r (address, orcpt, notify, state, attempts, last_error, ord)
          ORDER BY r.ord`,
        [
          e.id,
          JSON.stringify(e.recipients.map((r) => ({ address: r.address, orcpt: r.orcpt, notify: r.notify, state: r.state, attempts: r.attempts, last_error: r.lastError }))),
        ],
      );
    });
  }
}
