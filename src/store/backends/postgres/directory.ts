/*
 * Domains, accounts and aliases in the postgres backend.
 * Owns the rule that one address is either an account or an alias: every add locks its domain row, so
 * two nodes adding the same address serialise there. Never deletes a domain that still has accounts or
 * aliases (`conflict`). Lookups of malformed addresses return null; writes throw `invalid`.
 */
import type { Account, Alias, DirectoryStore, Domain, NewAccount } from '../../api.js';
import { normalizeAddress, normalizeDomain } from '../../common.js';
import { StoreError, isStoreError } from '../../errors.js';
import type { Db, Sql } from './db.js';
import { purgeMailboxes } from './mailboxes.js';

interface AccountRow {
  id: number;
  address: string;
  domain: string;
  password_hash: string | null;
  quota_bytes: number | null;
  created_at: number;
}

const ACCOUNT_COLUMNS = 'id, address, domain, password_hash, quota_bytes, created_at';

function toAccount(r: AccountRow): Account {
  return { id: r.id, address: r.address, domain: r.domain, passwordHash: r.password_hash, quotaBytes: r.quota_bytes, createdAt: r.created_at };
}

/** A malformed name cannot exist in the directory, so a lookup answers null rather than throwing. */
function orNull<T>(normalize: () => T): T | null {
  try {
    return normalize();
  } catch (err) {
    if (isStoreError(err, 'invalid')) return null;
    throw err;
  }
}

/** Locks the domain row for the rest of the transaction; throws `not_found`. */
async function lockDomain(sql: Sql, domain: string): Promise<void> {
  const rows = (await sql.query('SELECT name FROM domains WHERE name = $1 FOR UPDATE', [domain])).rows;
  if (rows.length === 0) throw new StoreError('not_found', `domain ${domain} not found`);
}

async function addressTaken(sql: Sql, address: string): Promise<boolean> {
  const rows = (
    await sql.query('SELECT 1 FROM accounts WHERE address = $1 UNION ALL SELECT 1 FROM aliases WHERE source = $1', [address])
  ).rows;
  return rows.length > 0;
}

export class PgDirectory implements DirectoryStore {
  constructor(private readonly db: Db) {}

  async addDomain(name: string): Promise<Domain> {
    const domain = normalizeDomain(name);
    const rows = await this.db.query<{ name: string; created_at: number }>(
      'directory.addDomain',
      'INSERT INTO domains (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING name, created_at',
      [domain, Date.now()],
    );
    const row = rows[0];
    if (!row) throw new StoreError('exists', `domain ${domain} exists`);
    return { name: row.name, createdAt: row.created_at };
  }

  async listDomains(): Promise<Domain[]> {
    const rows = await this.db.query<{ name: string; created_at: number }>('directory.listDomains', 'SELECT name, created_at FROM domains ORDER BY name');
    return rows.map((r) => ({ name: r.name, createdAt: r.created_at }));
  }

  async getDomain(name: string): Promise<Domain | null> {
    const domain = orNull(() => normalizeDomain(name));
    if (domain === null) return null;
    const rows = await this.db.query<{ name: string; created_at: number }>('directory.getDomain', 'SELECT name, created_at FROM domains WHERE name = $1', [domain]);
    const row = rows[0];
    return row ? { name: row.name, createdAt: row.created_at } : null;
  }

  async removeDomain(name: string): Promise<void> {
    const domain = normalizeDomain(name);
    await this.db.tx('directory.removeDomain', async (sql) => {
      await lockDomain(sql, domain);
      const used = (
        await sql.query('SELECT 1 FROM accounts WHERE domain = $1 UNION ALL SELECT 1 FROM aliases WHERE domain = $1 LIMIT 1', [domain])
      ).rows;
      if (used.length > 0) throw new StoreError('conflict', `domain ${domain} still has accounts or aliases`);
      await sql.query('DELETE FROM domains WHERE name = $1', [domain]);
    });
  }

  async addAccount(account: NewAccount): Promise<Account> {
    const [address, domain] = normalizeAddress(account.address);
    return this.db.tx('directory.addAccount', async (sql) => {
      await lockDomain(sql, domain);
      if (await addressTaken(sql, address)) throw new StoreError('exists', `${address} is already an account or alias`);
      const rows = (
        await sql.query<AccountRow>(
          `INSERT INTO accounts (address, domain, password_hash, quota_bytes, created_at) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${ACCOUNT_COLUMNS}`,
          [address, domain, account.passwordHash, account.quotaBytes ?? null, Date.now()],
        )
      ).rows;
      const row = rows[0];
      if (!row) throw new StoreError('unavailable', `postgres: account ${address} was not inserted`);
      return toAccount(row);
    });
  }

  async getAccount(address: string): Promise<Account | null> {
    const normalized = orNull(() => normalizeAddress(address)[0]);
    if (normalized === null) return null;
    const rows = await this.db.query<AccountRow>('directory.getAccount', `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE address = $1`, [normalized]);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async getAccountById(id: number): Promise<Account | null> {
    if (!Number.isSafeInteger(id) || id < 1 || id > 2 ** 31 - 1) return null;
    const rows = await this.db.query<AccountRow>('directory.getAccountById', `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`, [id]);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async listAccounts(domain?: string): Promise<Account[]> {
    const d = domain === undefined ? null : orNull(() => normalizeDomain(domain));
    if (domain !== undefined && d === null) return [];
    const rows = await this.db.query<AccountRow>(
      'directory.listAccounts',
      `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE ($1::text IS NULL OR domain = $1) ORDER BY address`,
      [d],
    );
    return rows.map(toAccount);
  }

  async setPassword(address: string, passwordHash: string | null): Promise<void> {
    await this.updateAccount('directory.setPassword', address, 'password_hash', passwordHash);
  }

  async setQuota(address: string, quotaBytes: number | null): Promise<void> {
    await this.updateAccount('directory.setQuota', address, 'quota_bytes', quotaBytes);
  }

  async removeAccount(address: string): Promise<void> {
    const [normalized] = normalizeAddress(address);
    await this.db.tx('directory.removeAccount', async (sql) => {
      // account first, then its mailboxes, then blobs: the lock order of every message write
      const rows = (await sql.query<{ id: number }>('SELECT id FROM accounts WHERE address = $1 FOR UPDATE', [normalized])).rows;
      const account = rows[0];
      if (!account) throw new StoreError('not_found', `account ${normalized} not found`);
      const boxes = (await sql.query<{ id: number }>('SELECT id FROM mailboxes WHERE account_id = $1 ORDER BY id', [account.id])).rows;
      await purgeMailboxes(
        sql,
        boxes.map((b) => b.id),
      );
      await sql.query('DELETE FROM accounts WHERE id = $1', [account.id]);
    });
  }

  async addAlias(alias: Alias): Promise<Alias> {
    const [source, domain] = normalizeAddress(alias.source, true);
    const targets = alias.targets.map((t) => t.trim()).filter((t) => t.length > 0);
    if (targets.length === 0) throw new StoreError('invalid', `alias ${source} needs at least one target`);
    return this.db.tx('directory.addAlias', async (sql) => {
      await lockDomain(sql, domain);
      if (await addressTaken(sql, source)) throw new StoreError('exists', `${source} is already an account or alias`);
      await sql.query('INSERT INTO aliases (source, domain, targets, created_at) VALUES ($1, $2, $3, $4)', [source, domain, targets, Date.now()]);
      return { source, targets };
    });
  }

  async getAlias(source: string): Promise<Alias | null> {
    const normalized = orNull(() => normalizeAddress(source, true)[0]);
    if (normalized === null) return null;
    const rows = await this.db.query<Alias>('directory.getAlias', 'SELECT source, targets FROM aliases WHERE source = $1', [normalized]);
    return rows[0] ? { source: rows[0].source, targets: rows[0].targets } : null;
  }

  async listAliases(domain?: string): Promise<Alias[]> {
    const d = domain === undefined ? null : orNull(() => normalizeDomain(domain));
    if (domain !== undefined && d === null) return [];
    const rows = await this.db.query<Alias>(
      'directory.listAliases',
      'SELECT source, targets FROM aliases WHERE ($1::text IS NULL OR domain = $1) ORDER BY source',
      [d],
    );
    return rows.map((r) => ({ source: r.source, targets: r.targets }));
  }

  async removeAlias(source: string): Promise<void> {
    const [normalized] = normalizeAddress(source, true);
    const rows = await this.db.query('directory.removeAlias', 'DELETE FROM aliases WHERE source = $1 RETURNING source', [normalized]);
    if (rows.length === 0) throw new StoreError('not_found', `alias ${normalized} not found`);
  }

  private async updateAccount(what: string, address: string, column: 'password_hash' | 'quota_bytes', value: string | number | null): Promise<void> {
    const [normalized] = normalizeAddress(address);
    const rows = await this.db.query(what, `UPDATE accounts SET ${column} = $2 WHERE address = $1 RETURNING id`, [normalized, value]);
    if (rows.length === 0) throw new StoreError('not_found', `account ${normalized} not found`);
  }
}
