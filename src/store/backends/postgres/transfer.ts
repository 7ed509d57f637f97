/*
 * COPY and MOVE between mailboxes, in one transaction each.
 * Destination UIDs follow source UID order; each new message gets its own MODSEQ; a move expunges the
 * source messages with tombstones and keeps the blob references as they are (they only change hands).
 * Never checks \Deleted (move takes the messages regardless). Errors: `not_found`, `over_quota`.
 */
import type { CopyResult, UidRange } from '../../api.js';
import { StoreError } from '../../errors.js';
import { addRefs } from './blobs.js';
import { notifyMailboxes, type Db, type Sql } from './db.js';
import { validId } from './mailboxes.js';
import { assertQuota, holdQuota, isSeen, lockMailboxes, messagesIn, recordRemoval, saveMailbox, type LockedMailbox, type MessageRow } from './message-state.js';

async function accountsOf(sql: Sql, ids: number[]): Promise<Map<number, number>> {
  const rows = (await sql.query<{ id: number; account_id: number }>('SELECT id, account_id FROM mailboxes WHERE id = ANY($1::int[])', [ids])).rows;
  const out = new Map(rows.map((r) => [r.id, r.account_id]));
  for (const id of ids) if (!out.has(id)) throw new StoreError('not_found', `mailbox ${id} not found`);
  return out;
}

/** Inserts copies of `rows` into the locked destination; returns [source uid, destination uid] pairs. */
async function insertCopies(sql: Sql, fromId: number, dest: LockedMailbox, rows: MessageRow[]): Promise<[number, number][]> {
  const pairs: [number, number][] = [];
  const modseqs: number[] = [];
  for (const r of rows) {
    pairs.push([r.uid, dest.uidNext++]);
    modseqs.push(++dest.highestModseq);
  }
  await sql.query(
    `INSERT INTO messages (mailbox_id, uid, modseq, created_modseq, flags, internal_date, size, blob_id, structure, prefix)
     SELECT $1, t.nuid, t.nmodseq, t.nmodseq, m.flags, m.internal_date, m.size, m.blob_id, m.structure, m.prefix
       FROM unnest($3::bigint[], $4::bigint[], $5::bigint[]) AS t (suid, nuid, nmodseq)
       JOIN messages m ON m.mailbox_id = $2 AND m.uid = t.suid`,
    [dest.id, fromId, pairs.map((p) => p[0]), pairs.map((p) => p[1]), modseqs],
  );
  await saveMailbox(sql, dest, {
    messages: rows.length,
    unseen: rows.filter((r) => !isSeen(r.flags)).length,
    size: rows.reduce((n, r) => n + r.size, 0),
  });
  return pairs;
}

export async function transfer(db: Db, fromId: number, uids: UidRange[], toId: number, now: number, move: boolean): Promise<CopyResult> {
  void now; // copies keep the source's internal date (RFC 3501 COPY)
  for (const id of [fromId, toId]) if (!validId(id)) throw new StoreError('not_found', `mailbox ${id} not found`);
  return db.tx(move ? 'messages.move' : 'messages.copy', async (sql) => {
    const accounts = await accountsOf(sql, [fromId, toId]);
    const destAccount = accounts.get(toId) ?? 0;
    // a move inside one account does not change its usage
    const quota = move && accounts.get(fromId) === destAccount ? null : await holdQuota(sql, destAccount);
    const boxes = await lockMailboxes(sql, [fromId, toId]);
    const source = boxes.get(fromId);
    const dest = boxes.get(toId);
    if (!source || !dest) throw new StoreError('not_found', `mailbox ${source ? toId : fromId} not found`);
    const rows = await messagesIn(sql, fromId, uids);
    if (rows.length === 0) return { uidValidity: dest.uidValidity, uids: [] };
    assertQuota(
      quota,
      rows.reduce((n, r) => n + r.size, 0),
    );
    const pairs = await insertCopies(sql, fromId, dest, rows);
    if (move) {
      const removed = (
        await sql.query<MessageRow>('DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) RETURNING uid, modseq, flags, size, blob_id', [
          fromId,
          rows.map((r) => r.uid),
        ])
      ).rows;
      await recordRemoval(sql, source, removed);
    } else {
      await addRefs(
        sql,
        rows.map((r) => r.blob_id),
      );
    }
    notifyMailboxes(sql, [...new Map([source, dest].map((b) => [b.id, { id: b.id, highestModseq: b.highestModseq }])).values()]);
    return { uidValidity: dest.uidValidity, uids: pairs };
  });
}
