/*
 * Mailbox rows: create, look up, rename (with children), subscribe, delete.
 * Owns UIDVALIDITY allocation (strictly increasing per account, so a re-created mailbox never reuses
 * one) and the removal of whole mailboxes with their blob references. Never allocates UIDs or MODSEQs
 * (append.ts, messages.ts and transfer.ts do). Errors: `not_found`, `exists`, `invalid` for an empty name.
 */
import type { Mailbox, MailboxStore } from '../../api.js';
import { newUidValidity } from '../../common.js';
import { StoreError } from '../../errors.js';
import { dropRefs } from './blobs.js';
import { notifyMailboxes, type Db, type Sql } from './db.js';

export interface MailboxRow {
  id: number;
  account_id: number;
  name: string;
  special_use: string | null;
  subscribed: boolean;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  messages: number;
  unseen: number;
  size: number;
}

const COLUMNS = 'id, account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq, messages, unseen, size';
const MAX_INT4 = 2 ** 31 - 1;

export function toMailbox(r: MailboxRow): Mailbox {
  return {
    id: r.id,
    accountId: r.account_id,
    name: r.name,
    specialUse: r.special_use,
    subscribed: r.subscribed,
    uidValidity: r.uid_validity,
    uidNext: r.uid_next,
    highestModseq: r.highest_modseq,
    messages: r.messages,
    unseen: r.unseen,
    size: r.size,
  };
}

/** Ids outside INTEGER would make the server raise a data error; they simply do not exist. */
export function validId(id: number): boolean {
  return Number.isSafeInteger(id) && id >= 1 && id <= MAX_INT4;
}

function checkName(name: string): void {
  if (name.length === 0 || name.includes('\0')) throw new StoreError('invalid', `invalid mailbox name ${JSON.stringify(name)}`);
}

/**
 * Deletes mailboxes with their messages and drops the messages' blob references. Locks the rows in id
 * order first, so it waits for (and is not interleaved with) appends in flight.
 */
export async function purgeMailboxes(sql: Sql, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const locked = (
    await sql.query<{ id: number; highest_modseq: number }>('SELECT id, highest_modseq FROM mailboxes WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE', [ids])
  ).rows;
  const blobs = (await sql.query<{ blob_id: string }>('DELETE FROM messages WHERE mailbox_id = ANY($1::int[]) RETURNING blob_id', [ids])).rows;
  await dropRefs(
    sql,
    blobs.map((b) => b.blob_id),
  );
  await sql.query('DELETE FROM mailboxes WHERE id = ANY($1::int[])', [ids]);
  // wakes sessions that have the mailbox open, so that they notice it is gone
  notifyMailboxes(
    sql,
    locked.map((r) => ({ id: r.id, highestModseq: r.highest_modseq })),
  );
  return locked.length;
}

export class PgMailboxes implements MailboxStore {
  constructor(private readonly db: Db) {}

  async create(accountId: number, name: string, options: { specialUse?: string | null; subscribed?: boolean } = {}): Promise<Mailbox> {
    checkName(name);
    if (!validId(accountId)) throw new StoreError('not_found', `account ${accountId} not found`);
    return this.db.tx('mailboxes.create', async (sql) => {
      const uv = (
        await sql.query<{ last_uid_validity: number }>(
          'UPDATE accounts SET last_uid_validity = GREATEST(last_uid_validity + 1, $2) WHERE id = $1 RETURNING last_uid_validity',
          [accountId, newUidValidity(Date.now())],
        )
      ).rows[0];
      if (!uv) throw new StoreError('not_found', `account ${accountId} not found`);
      const exists = (await sql.query('SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2', [accountId, name])).rows;
      if (exists.length > 0) throw new StoreError('exists', `mailbox ${name} exists`);
      const rows = (
        await sql.query<MailboxRow>(
          `INSERT INTO mailboxes (account_id, name, special_use, subscribed, uid_validity) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${COLUMNS}`,
          [accountId, name, options.specialUse ?? null, options.subscribed ?? false, uv.last_uid_validity],
        )
      ).rows;
      const row = rows[0];
      if (!row) throw new StoreError('unavailable', `postgres: mailbox ${name} was not inserted`);
      return toMailbox(row);
    });
  }

  async get(accountId: number, name: string): Promise<Mailbox | null> {
    if (!validId(accountId)) return null;
    const rows = await this.db.query<MailboxRow>('mailboxes.get', `SELECT ${COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2`, [accountId, name]);
    return rows[0] ? toMailbox(rows[0]) : null;
  }

  async getById(id: number): Promise<Mailbox | null> {
    if (!validId(id)) return null;
    const rows = await this.db.query<MailboxRow>('mailboxes.getById', `SELECT ${COLUMNS} FROM mailboxes WHERE id = $1`, [id]);
    return rows[0] ? toMailbox(rows[0]) : null;
  }

  async list(accountId: number): Promise<Mailbox[]> {
    if (!validId(accountId)) return [];
    const rows = await this.db.query<MailboxRow>('mailboxes.list', `SELECT ${COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name`, [accountId]);
    return rows.map(toMailbox);
  }

  async rename(accountId: number, from: string, to: string, options: { separator?: string } = {}): Promise<void> {
    checkName(to);
    if (!validId(accountId)) throw new StoreError('not_found', `mailbox ${from} not found`);
    const separator = options.separator ? options.separator : null;
    if (from === to) {
      if (await this.get(accountId, from)) throw new StoreError('exists', `mailbox ${to} exists`);
      throw new StoreError('not_found', `mailbox ${from} not found`);
    }
    await this.db.tx('mailboxes.rename', async (sql) => {
      // One statement: the unique constraint is deferred to its end, so a subtree can move in one go.
      const rows = (
        await sql.query<{ name: string }>(
          `UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1)
            WHERE account_id = $1
              AND (name = $2 OR ($4::text IS NOT NULL AND left(name, length($2) + length($4)) = $2 || $4))
           RETURNING name`,
          [accountId, from, to, separator],
        )
      ).rows;
      if (!rows.some((r) => r.name === to)) throw new StoreError('not_found', `mailbox ${from} not found`);
    });
  }

  async delete(accountId: number, name: string): Promise<void> {
    if (!validId(accountId)) throw new StoreError('not_found', `mailbox ${name} not found`);
    await this.db.tx('mailboxes.delete', async (sql) => {
      const rows = (await sql.query<{ id: number }>('SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2', [accountId, name])).rows;
      const row = rows[0];
      if (!row) throw new StoreError('not_found', `mailbox ${name} not found`);
      // 0 when a concurrent delete got there first, while we waited for its lock
      if ((await purgeMailboxes(sql, [row.id])) === 0) throw new StoreError('not_found', `mailbox ${name} not found`);
    });
  }

  async setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void> {
    if (!validId(accountId)) throw new StoreError('not_found', `mailbox ${name} not found`);
    const rows = await this.db.query(
      'mailboxes.setSubscribed',
      'UPDATE mailboxes SET subscribed = $3 WHERE account_id = $1 AND name = $2 RETURNING id',
      [accountId, name, subscribed],
    );
    if (rows.length === 0) throw new StoreError('not_found', `mailbox ${name} not found`);
  }
}
