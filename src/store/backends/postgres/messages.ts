/*
 * Messages of a mailbox: list, flags (with CONDSTORE), expunge, content, quota; append and copy/move
 * live in append.ts and transfer.ts. Every write locks the mailbox row first and bumps its MODSEQ in
 * the same transaction, then signals the change (delivered on commit). Never reuses a UID.
 * Errors: `not_found` (mailbox, message), `corrupt` (content), `invalid` (flags).
 */
import type { AppendResult, CompactIndex, CopyResult, FlagOperation, FlagUpdateResult, MessageIndex, MessageMeta, MessageStore, NewMessage, Quota, UidRange } from '../../api.js';
import { applyFlagOperation, normalizeFlags, sameFlags, verifyBlob, withPrefix } from '../../common.js';
import { StoreError } from '../../errors.js';
import { appendMessage } from './append.js';
import { dropRefs } from './blobs.js';
import { notifyMailboxes, type Db, type Sql } from './db.js';
import { validId } from './mailboxes.js';
import { isSeen, lockMailbox, messagesIn, rangeJoin, rangeParams, recordRemoval, saveMailbox, type LockedMailbox, type MessageRow } from './message-state.js';
import { transfer } from './transfer.js';

interface MetaRow {
  uid: number;
  modseq: number;
  flags: string[];
  internal_date: number;
  size: number;
  blob_id: string;
}

interface FlagChange {
  uid: number;
  modseq: number;
  flags: string[];
}

/** Decides, message by message, what a STORE does; assigns each change its own MODSEQ. */
function planFlags(
  box: LockedMailbox,
  rows: MessageRow[],
  operation: FlagOperation,
  flags: string[],
  unchangedSince: number | undefined,
): { updated: FlagChange[]; modified: number[]; unseenDelta: number } {
  const updated: FlagChange[] = [];
  const modified: number[] = [];
  let unseenDelta = 0;
  for (const r of rows) {
    if (unchangedSince !== undefined && r.modseq > unchangedSince) {
      modified.push(r.uid);
      continue;
    }
    const next = applyFlagOperation(r.flags, operation, flags);
    if (sameFlags(next, r.flags)) continue;
    unseenDelta += Number(isSeen(r.flags)) - Number(isSeen(next));
    updated.push({ uid: r.uid, modseq: ++box.highestModseq, flags: next });
  }
  return { updated, modified, unseenDelta };
}

/** A message's bytes: its own prefix (a delivery's trace headers), then its blob's, checked against the id. */
function messageBytes(row: { id: string; content: Buffer; prefix: Buffer | null }): Buffer {
  return withPrefix(row.prefix, verifyBlob(row.id, row.content));
}

export class PgMessages implements MessageStore {
  constructor(private readonly db: Db) {}

  append(mailboxId: number, message: NewMessage, now: number): Promise<AppendResult> {
    return appendMessage(this.db, mailboxId, message, now);
  }

  async list(mailboxId: number, uids?: UidRange[]): Promise<MessageMeta[]> {
    if (!validId(mailboxId) || (uids !== undefined && uids.length === 0)) return [];
    const [lo, hi] = rangeParams(uids);
    const rows = await this.db.query<MetaRow>(
      'messages.list',
      `SELECT m.uid, m.modseq, m.flags, m.internal_date, m.size, m.blob_id FROM messages m ${rangeJoin(2)}
        WHERE m.mailbox_id = $1 ORDER BY m.uid`,
      [mailboxId, lo, hi],
    );
    return rows.map((r) => ({ uid: r.uid, modseq: r.modseq, flags: r.flags, internalDate: r.internal_date, size: r.size, blobId: r.blob_id }));
  }

  async index(mailboxId: number, uids?: UidRange[]): Promise<MessageIndex> {
    const out: MessageIndex = { uids: [], modseqs: [], internalDates: [], sizes: [], flags: [], flagSets: [] };
    if (!validId(mailboxId) || (uids !== undefined && uids.length === 0)) return out;
    const [lo, hi] = rangeParams(uids);
    const rows = await this.db.query<Omit<MetaRow, 'blob_id'>>(
      'messages.index',
      `SELECT m.uid, m.modseq, m.flags, m.internal_date, m.size FROM messages m ${rangeJoin(2)} WHERE m.mailbox_id = $1 ORDER BY m.uid`,
      [mailboxId, lo, hi],
    );
    const seen = new Map<string, number>();
    for (const r of rows) {
      const key = r.flags.join('\0');
      let f = seen.get(key);
      if (f === undefined) {
        f = out.flagSets.push(r.flags) - 1;
        seen.set(key, f);
      }
      out.uids.push(r.uid);
      out.modseqs.push(r.modseq);
      out.internalDates.push(r.internal_date);
      out.sizes.push(r.size);
      out.flags.push(f);
    }
    return out;
  }

  async structures(mailboxId: number, uids?: UidRange[]): Promise<{ uid: number; structure: string | null }[]> {
    if (!validId(mailboxId) || (uids !== undefined && uids.length === 0)) return [];
    const [lo, hi] = rangeParams(uids);
    return this.db.query<{ uid: number; structure: string | null }>(
      'messages.structures',
      `SELECT m.uid, m.structure FROM messages m ${rangeJoin(2)} WHERE m.mailbox_id = $1 ORDER BY m.uid`,
      [mailboxId, lo, hi],
    );
  }

  async setFlags(
    mailboxId: number,
    uids: UidRange[],
    operation: FlagOperation,
    flags: string[],
    options: { unchangedSince?: number } = {},
  ): Promise<FlagUpdateResult> {
    const wanted = normalizeFlags(flags);
    if (!validId(mailboxId)) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
    return this.db.tx('messages.setFlags', async (sql) => {
      const box = await lockMailbox(sql, mailboxId);
      if (uids.length === 0) return { updated: [], modified: [] };
      const rows = await messagesIn(sql, mailboxId, uids);
      const plan = planFlags(box, rows, operation, wanted, options.unchangedSince);
      if (plan.updated.length > 0) {
        await sql.query(
          `UPDATE messages m SET flags = u.flags, modseq = u.modseq
             FROM jsonb_to_recordset($2::jsonb) AS u (uid bigint, modseq bigint, flags text[])
            WHERE m.mailbox_id = $1 AND m.uid = u.uid`,
          [mailboxId, JSON.stringify(plan.updated)],
        );
        await saveMailbox(sql, box, { messages: 0, unseen: plan.unseenDelta, size: 0 });
        notifyMailboxes(sql, [{ id: box.id, highestModseq: box.highestModseq }]);
      }
      return { updated: plan.updated, modified: plan.modified };
    });
  }

  async expunge(mailboxId: number, uids?: UidRange[]): Promise<number[]> {
    if (!validId(mailboxId)) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
    return this.db.tx('messages.expunge', async (sql) => {
      const box = await lockMailbox(sql, mailboxId);
      if (uids !== undefined && uids.length === 0) return [];
      const [lo, hi] = rangeParams(uids);
      const removed = (
        await sql.query<MessageRow>(
          `DELETE FROM messages m USING unnest($2::bigint[], $3::bigint[]) AS r (lo, hi)
            WHERE m.mailbox_id = $1 AND m.uid BETWEEN r.lo AND r.hi
              AND EXISTS (SELECT 1 FROM unnest(m.flags) AS f WHERE lower(f) = '\\deleted')
           RETURNING m.uid, m.modseq, m.flags, m.size, m.blob_id`,
          [mailboxId, lo, hi],
        )
      ).rows;
      if (removed.length === 0) return [];
      const expunged = await recordRemoval(sql, box, removed);
      await dropRefs(
        sql,
        removed.map((r) => r.blob_id),
      );
      notifyMailboxes(sql, [{ id: box.id, highestModseq: box.highestModseq }]);
      return expunged;
    });
  }

  copy(fromMailboxId: number, uids: UidRange[], toMailboxId: number, now: number): Promise<CopyResult> {
    return transfer(this.db, fromMailboxId, uids, toMailboxId, now, false);
  }

  move(fromMailboxId: number, uids: UidRange[], toMailboxId: number, now: number): Promise<CopyResult> {
    return transfer(this.db, fromMailboxId, uids, toMailboxId, now, true);
  }

  async content(mailboxId: number, uid: number): Promise<Buffer> {
    const rows =
      validId(mailboxId) && Number.isSafeInteger(uid)
        ? await this.db.query<{ id: string; content: Buffer; prefix: Buffer | null }>(
            'messages.content',
            'SELECT b.id, b.content, m.prefix FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 AND m.uid = $2',
            [mailboxId, uid],
          )
        : [];
    const row = rows[0];
    if (!row) throw new StoreError('not_found', `message ${uid} not found in mailbox ${mailboxId}`);
    return messageBytes(row);
  }

  // --- IMAP read paths: SELECT without reading every row, compact views, batched bodies ---

  async flagSets(mailboxId: number): Promise<string[][]> {
    if (!validId(mailboxId)) return [];
    // a loose index scan over messages_flags: one seek per distinct set, not one step per message
    const rows = await this.db.query<{ x: string[] }>(
      'messages.flagSets',
      `WITH RECURSIVE f(x) AS (
         (SELECT flags FROM messages WHERE mailbox_id = $1 ORDER BY flags LIMIT 1)
         UNION ALL
         SELECT (SELECT m.flags FROM messages m WHERE m.mailbox_id = $1 AND m.flags > f.x ORDER BY m.flags LIMIT 1) FROM f WHERE f.x IS NOT NULL)
       SELECT x FROM f WHERE x IS NOT NULL`,
      [mailboxId],
    );
    return rows.map((r) => r.x);
  }

  async compactIndex(mailboxId: number, fromUid = 1): Promise<CompactIndex> {
    const empty = (highestModseq: number): CompactIndex => ({
      uids: new Float64Array(0),
      modseqs: new Float64Array(0),
      internalDates: new Float64Array(0),
      sizes: new Float64Array(0),
      flags: new Uint32Array(0),
      flagSets: [],
      highestModseq,
    });
    if (!validId(mailboxId)) return empty(0);
    // one statement, one snapshot: the rows and the mailbox's HIGHESTMODSEQ agree
    const rows = await this.db.query<Omit<MetaRow, 'blob_id'> & { highest: number }>(
      'messages.compactIndex',
      `SELECT m.uid, m.modseq, m.flags, m.internal_date, m.size, (SELECT highest_modseq FROM mailboxes WHERE id = $1) AS highest
         FROM messages m WHERE m.mailbox_id = $1 AND m.uid >= $2 ORDER BY m.uid`,
      [mailboxId, Math.max(1, Math.floor(fromUid))],
    );
    if (rows.length === 0) {
      const box = await this.db.query<{ highest_modseq: number }>('messages.compactIndex', 'SELECT highest_modseq FROM mailboxes WHERE id = $1', [mailboxId]);
      return empty(box[0]?.highest_modseq ?? 0);
    }
    const n = rows.length;
    const out: CompactIndex = {
      uids: new Float64Array(n),
      modseqs: new Float64Array(n),
      internalDates: new Float64Array(n),
      sizes: new Float64Array(n),
      flags: new Uint32Array(n),
      flagSets: [],
      highestModseq: rows[0]!.highest,
    };
    const ids = new Map<string, number>();
    for (let k = 0; k < n; k++) {
      const r = rows[k]!;
      const key = r.flags.join('\0');
      let id = ids.get(key);
      if (id === undefined) {
        id = out.flagSets.push(r.flags) - 1;
        ids.set(key, id);
      }
      out.uids[k] = r.uid;
      out.modseqs[k] = r.modseq;
      out.internalDates[k] = r.internal_date;
      out.sizes[k] = r.size;
      out.flags[k] = id;
    }
    return out;
  }

  async contents(mailboxId: number, uids: readonly number[]): Promise<(Buffer | null)[]> {
    const wanted = uids.filter((u) => Number.isSafeInteger(u));
    const rows =
      validId(mailboxId) && wanted.length > 0
        ? await this.db.query<{ uid: number; id: string; content: Buffer; prefix: Buffer | null }>(
            'messages.contents',
            'SELECT m.uid, b.id, b.content, m.prefix FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 AND m.uid = ANY($2::bigint[])',
            [mailboxId, wanted],
          )
        : [];
    const byUid = new Map(rows.map((r) => [r.uid, r]));
    return uids.map((uid) => {
      const row = byUid.get(uid);
      return row ? messageBytes(row) : null;
    });
  }

  async pruneDigests(before: number): Promise<number> {
    return (await this.db.query('messages.pruneDigests', 'DELETE FROM delivery_digests WHERE created_at < $1 RETURNING 1', [before])).length;
  }

  async quota(accountId: number): Promise<Quota> {
    const rows = validId(accountId)
      ? await this.db.query<{ limit_bytes: number | null; bytes: number; messages: number }>(
          'messages.quota',
          `SELECT a.quota_bytes AS limit_bytes,
                  COALESCE((SELECT SUM(size) FROM mailboxes WHERE account_id = a.id), 0) AS bytes,
                  COALESCE((SELECT SUM(messages) FROM mailboxes WHERE account_id = a.id), 0) AS messages
             FROM accounts a WHERE a.id = $1`,
          [accountId],
        )
      : [];
    const row = rows[0];
    if (!row) throw new StoreError('not_found', `account ${accountId} not found`);
    return { bytes: row.bytes, messages: row.messages, limitBytes: row.limit_bytes };
  }
}
