/*
 * Mailbox operations of the embedded backend: names, subscriptions, UIDVALIDITY and the counters
 * (messages, unseen, size) that messages.ts keeps exact in the same transactions. Deleting a mailbox
 * drops the blob references of its messages; bytes are never touched here.
 */
import type { Mailbox } from '../../api.js';
import { newUidValidity } from '../../common.js';
import { StoreError } from '../../errors.js';
import { unrefBlob } from './blobs.js';
import { type OpContext, stmt } from './context.js';

export interface MailboxRow {
  id: number;
  account_id: number;
  name: string;
  special_use: string | null;
  subscribed: number;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  messages: number;
  unseen: number;
  size: number;
}

export const toMailbox = (r: MailboxRow): Mailbox => ({
  id: r.id,
  accountId: r.account_id,
  name: r.name,
  specialUse: r.special_use,
  subscribed: r.subscribed === 1,
  uidValidity: r.uid_validity,
  uidNext: r.uid_next,
  highestModseq: r.highest_modseq,
  messages: r.messages,
  unseen: r.unseen,
  size: r.size,
});

export function mailboxRowById(ctx: OpContext, id: number): MailboxRow {
  const r = stmt(ctx, 'SELECT * FROM mailboxes WHERE id = ?').get(id) as MailboxRow | undefined;
  if (!r) throw new StoreError('not_found', `mailbox ${id} not found`);
  return r;
}

function mailboxRow(ctx: OpContext, accountId: number, name: string): MailboxRow {
  const r = stmt(ctx, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name) as MailboxRow | undefined;
  if (!r) throw new StoreError('not_found', `mailbox ${name} not found`);
  return r;
}

export function deleteMailboxRow(ctx: OpContext, id: number): void {
  const blobs = stmt(ctx, 'SELECT blob_id, COUNT(*) AS n FROM messages WHERE mailbox_id = ? GROUP BY blob_id').all(id) as {
    blob_id: string;
    n: number;
  }[];
  for (const b of blobs) unrefBlob(ctx, b.blob_id, b.n);
  stmt(ctx, 'DELETE FROM messages WHERE mailbox_id = ?').run(id);
  stmt(ctx, 'DELETE FROM expunged WHERE mailbox_id = ?').run(id);
  stmt(ctx, 'DELETE FROM mailboxes WHERE id = ?').run(id);
}

export function mailboxOps(ctx: OpContext, clock: () => number) {
  return {
    create(accountId: number, name: string, options: { specialUse?: string | null; subscribed?: boolean } = {}): Mailbox {
      if (!stmt(ctx, 'SELECT 1 FROM accounts WHERE id = ?').get(accountId)) throw new StoreError('not_found', `account ${accountId} not found`);
      if (name.length === 0) throw new StoreError('invalid', 'empty mailbox name');
      if (stmt(ctx, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name)) {
        throw new StoreError('exists', `mailbox ${name} exists`);
      }
      const info = stmt(
        ctx,
        'INSERT INTO mailboxes (account_id, name, special_use, subscribed, uid_validity) VALUES (?, ?, ?, ?, ?)',
      ).run(accountId, name, options.specialUse ?? null, options.subscribed ? 1 : 0, newUidValidity(clock()));
      return toMailbox(mailboxRowById(ctx, Number(info.lastInsertRowid)));
    },
    get(accountId: number, name: string): Mailbox | null {
      const r = stmt(ctx, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name) as MailboxRow | undefined;
      return r ? toMailbox(r) : null;
    },
    getById(id: number): Mailbox | null {
      const r = stmt(ctx, 'SELECT * FROM mailboxes WHERE id = ?').get(id) as MailboxRow | undefined;
      return r ? toMailbox(r) : null;
    },
    list(accountId: number): Mailbox[] {
      return (stmt(ctx, 'SELECT * FROM mailboxes WHERE account_id = ? ORDER BY name').all(accountId) as MailboxRow[]).map(toMailbox);
    },
    rename(accountId: number, from: string, to: string, options: { separator?: string } = {}): void {
      const row = mailboxRow(ctx, accountId, from);
      if (to.length === 0) throw new StoreError('invalid', 'empty mailbox name');
      const moves: [number, string][] = [[row.id, to]];
      if (options.separator) {
        const prefix = from + options.separator;
        const children = stmt(ctx, 'SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?').all(
          accountId,
          prefix.length,
          prefix,
        ) as { id: number; name: string }[];
        for (const c of children) moves.push([c.id, to + options.separator + c.name.slice(prefix.length)]);
      }
      const movingIds = new Set(moves.map(([id]) => id));
      for (const [, name] of moves) {
        const clash = stmt(ctx, 'SELECT id FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name) as { id: number } | undefined;
        if (clash && !movingIds.has(clash.id)) throw new StoreError('exists', `mailbox ${name} exists`);
      }
      // two passes so a child's new name may equal another moving mailbox's old name
      for (const [id] of moves) stmt(ctx, "UPDATE mailboxes SET name = char(1) || id WHERE id = ?").run(id);
      for (const [id, name] of moves) stmt(ctx, 'UPDATE mailboxes SET name = ? WHERE id = ?').run(name, id);
    },
    delete(accountId: number, name: string): void {
      deleteMailboxRow(ctx, mailboxRow(ctx, accountId, name).id);
    },
    setSubscribed(accountId: number, name: string, subscribed: boolean): void {
      stmt(ctx, 'UPDATE mailboxes SET subscribed = ? WHERE id = ?').run(subscribed ? 1 : 0, mailboxRow(ctx, accountId, name).id);
    },
  };
}
