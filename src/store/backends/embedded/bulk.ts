/*
 * Bulk rows of the embedded backend (BulkStore in api.ts): messages read as stored, and mailboxes,
 * messages and queue entries written as given, for `cartero store migrate`. Runs in the worker's
 * transaction like every write; the main thread has checked the rows (bulk-common.ts) and made large
 * contents durable files first. Never allocates a UID or MODSEQ and never signals a change.
 */
import type { BulkMailbox, BulkMessage, BulkQueueEntry, Mailbox } from '../../api.js';
import { storedPrefix } from '../../common.js';
import { StoreError } from '../../errors.js';
import { type InlineContent, refBlob } from './blobs.js';
import { type OpContext, stmt } from './context.js';
import { mailboxRowById, toMailbox } from './mailboxes.js';

/** One message as the main thread sends it: checked, flags normalised, content inline or in a durable file. */
export interface BulkMessageRow extends Omit<BulkMessage, 'flags' | 'prefix'> {
  flags: string[];
  prefix: Uint8Array | null;
  inline: InlineContent;
}

interface ExportRow {
  uid: number;
  modseq: number;
  created_modseq: number;
  flags: string;
  internal_date: number;
  size: number;
  blob_id: string;
  prefix: Buffer | null;
  structure: string | null;
  idempotency_key: string | null;
}

const isSeen = (flags: readonly string[]) => flags.some((f) => f.toLowerCase() === '\\seen');

export function bulkOps(ctx: OpContext) {
  return {
    exportMessages(mailboxId: number, afterUid: number, limit: number): BulkMessage[] {
      const rows = stmt(
        ctx,
        `SELECT uid, modseq, created_modseq, flags, internal_date, size, blob_id, prefix, structure, idempotency_key
           FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?`,
      ).all(mailboxId, afterUid, Math.max(0, Math.floor(limit))) as ExportRow[];
      return rows.map((r) => ({
        uid: r.uid,
        modseq: r.modseq,
        createdModseq: r.created_modseq,
        flags: JSON.parse(r.flags) as string[],
        internalDate: r.internal_date,
        size: r.size,
        blobId: r.blob_id,
        prefix: r.prefix,
        structure: r.structure,
        idempotencyKey: r.idempotency_key,
      }));
    },

    importMailbox(accountId: number, m: BulkMailbox): Mailbox {
      if (!stmt(ctx, 'SELECT 1 FROM accounts WHERE id = ?').get(accountId)) throw new StoreError('not_found', `account ${accountId} not found`);
      if (stmt(ctx, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, m.name)) throw new StoreError('exists', `mailbox ${m.name} exists`);
      const info = stmt(
        ctx,
        'INSERT INTO mailboxes (account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(accountId, m.name, m.specialUse, m.subscribed ? 1 : 0, m.uidValidity, m.uidNext, m.highestModseq);
      const id = Number(info.lastInsertRowid);
      const ins = stmt(ctx, 'INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)');
      for (const e of m.expunged) ins.run(id, e.uid, e.modseq);
      return toMailbox(mailboxRowById(ctx, id));
    },

    importMessages(mailboxId: number, messages: BulkMessageRow[], now: number): void {
      const box = mailboxRowById(ctx, mailboxId);
      const taken = stmt(ctx, 'SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ? UNION ALL SELECT 1 FROM expunged WHERE mailbox_id = ? AND uid = ?');
      const keyTaken = stmt(ctx, 'SELECT 1 FROM messages WHERE account_id = ? AND idempotency_key = ?');
      const ins = stmt(
        ctx,
        `INSERT INTO messages (mailbox_id, uid, account_id, blob_id, size, internal_date, flags, seen, modseq, created_modseq, idempotency_key, structure, prefix)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      let unseen = 0;
      let size = 0;
      for (const m of messages) {
        if (m.uid >= box.uid_next || m.modseq > box.highest_modseq) throw new StoreError('invalid', `message UID ${m.uid} does not fit mailbox ${box.name}`);
        if (taken.get(mailboxId, m.uid, mailboxId, m.uid)) throw new StoreError('exists', `UID ${m.uid} of mailbox ${box.name} is taken or expunged`);
        if (m.idempotencyKey !== null && keyTaken.get(box.account_id, m.idempotencyKey)) throw new StoreError('exists', `idempotency key ${m.idempotencyKey} is taken`);
        const prefix = storedPrefix(m.prefix);
        refBlob(ctx, m.blobId, m.size - (prefix?.length ?? 0), now, m.inline);
        const seen = isSeen(m.flags);
        ins.run(mailboxId, m.uid, box.account_id, m.blobId, m.size, m.internalDate, JSON.stringify(m.flags), seen ? 1 : 0, m.modseq, m.createdModseq, m.idempotencyKey, m.structure, prefix);
        unseen += seen ? 0 : 1;
        size += m.size;
      }
      stmt(ctx, 'UPDATE mailboxes SET messages = messages + ?, unseen = unseen + ?, size = size + ? WHERE id = ?').run(messages.length, unseen, size, mailboxId);
    },

    importQueueEntry(e: BulkQueueEntry, blobId: string, size: number, inline: InlineContent, now: number): void {
      if (stmt(ctx, 'SELECT 1 FROM queue WHERE id = ?').get(e.id)) throw new StoreError('exists', `queue entry ${e.id} exists`);
      refBlob(ctx, blobId, size, now, inline);
      stmt(ctx, 'INSERT INTO queue (id, sender, meta, blob_id, size, received_at, state, due_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
        e.id,
        e.sender,
        JSON.stringify(e.meta),
        blobId,
        size,
        e.receivedAt,
        e.state,
        e.dueAt,
        e.attempts,
      );
      const ins = stmt(ctx, 'INSERT INTO queue_recipients (queue_id, address, orcpt, notify, state, attempts, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const r of e.recipients) ins.run(e.id, r.address, r.orcpt, r.notify === null ? null : JSON.stringify(r.notify), r.state, r.attempts, r.lastError);
    },
  };
}
