/*
 * Directory operations of the embedded backend (domains, accounts, aliases). Synchronous, run inside
 * the worker's transaction; they throw StoreError and never touch mailboxes' contents directly
 * except through mailboxes.ts when an account is removed.
 */
import type { Account, Alias, Domain, NewAccount } from '../../api.js';
import { normalizeAddress, normalizeDomain } from '../../common.js';
import { StoreError } from '../../errors.js';
import { type OpContext, stmt } from './context.js';
import { deleteMailboxRow } from './mailboxes.js';

interface AccountRow {
  id: number;
  address: string;
  domain: string;
  password_hash: string | null;
  quota_bytes: number | null;
  created_at: number;
}

const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  address: r.address,
  domain: r.domain,
  passwordHash: r.password_hash,
  quotaBytes: r.quota_bytes,
  createdAt: r.created_at,
});

const toAlias = (r: { source: string; targets: string }): Alias => ({ source: r.source, targets: JSON.parse(r.targets) as string[] });

function requireDomain(ctx: OpContext, domain: string): void {
  if (!stmt(ctx, 'SELECT 1 FROM domains WHERE name = ?').get(domain)) {
    throw new StoreError('not_found', `domain ${domain} not found`);
  }
}

function addressTaken(ctx: OpContext, address: string): boolean {
  return !!(
    stmt(ctx, 'SELECT 1 FROM accounts WHERE address = ?').get(address) ||
    stmt(ctx, 'SELECT 1 FROM aliases WHERE source = ?').get(address)
  );
}

function accountRow(ctx: OpContext, address: string): AccountRow {
  const [addr] = normalizeAddress(address);
  const row = stmt(ctx, 'SELECT * FROM accounts WHERE address = ?').get(addr) as AccountRow | undefined;
  if (!row) throw new StoreError('not_found', `user ${addr} not found`);
  return row;
}

export function directoryOps(ctx: OpContext, clock: () => number) {
  return {
    addDomain(name: string): Domain {
      const d = normalizeDomain(name);
      if (stmt(ctx, 'SELECT 1 FROM domains WHERE name = ?').get(d)) throw new StoreError('exists', `domain ${d} exists`);
      const createdAt = clock();
      stmt(ctx, 'INSERT INTO domains (name, created_at) VALUES (?, ?)').run(d, createdAt);
      return { name: d, createdAt };
    },
    listDomains(): Domain[] {
      return (stmt(ctx, 'SELECT name, created_at FROM domains ORDER BY name').all() as { name: string; created_at: number }[]).map(
        (r) => ({ name: r.name, createdAt: r.created_at }),
      );
    },
    getDomain(name: string): Domain | null {
      const r = stmt(ctx, 'SELECT name, created_at FROM domains WHERE name = ?').get(normalizeDomain(name)) as
        | { name: string; created_at: number }
        | undefined;
      return r ? { name: r.name, createdAt: r.created_at } : null;
    },
    removeDomain(name: string): void {
      const d = normalizeDomain(name);
      requireDomain(ctx, d);
      if (stmt(ctx, 'SELECT 1 FROM accounts WHERE domain = ? UNION ALL SELECT 1 FROM aliases WHERE domain = ? LIMIT 1').get(d, d)) {
        throw new StoreError('conflict', `domain ${d} still has users or aliases`);
      }
      stmt(ctx, 'DELETE FROM domains WHERE name = ?').run(d);
    },
    addAccount(a: NewAccount): Account {
      const [address, domain] = normalizeAddress(a.address);
      requireDomain(ctx, domain);
      if (addressTaken(ctx, address)) throw new StoreError('exists', `address ${address} exists`);
      const createdAt = clock();
      const info = stmt(ctx, 'INSERT INTO accounts (address, domain, password_hash, quota_bytes, created_at) VALUES (?, ?, ?, ?, ?)').run(
        address,
        domain,
        a.passwordHash,
        a.quotaBytes ?? null,
        createdAt,
      );
      return { id: Number(info.lastInsertRowid), address, domain, passwordHash: a.passwordHash, quotaBytes: a.quotaBytes ?? null, createdAt };
    },
    getAccount(address: string): Account | null {
      const [addr] = normalizeAddress(address);
      const r = stmt(ctx, 'SELECT * FROM accounts WHERE address = ?').get(addr) as AccountRow | undefined;
      return r ? toAccount(r) : null;
    },
    getAccountById(id: number): Account | null {
      const r = stmt(ctx, 'SELECT * FROM accounts WHERE id = ?').get(id) as AccountRow | undefined;
      return r ? toAccount(r) : null;
    },
    listAccounts(domain?: string): Account[] {
      const rows = (domain === undefined
        ? stmt(ctx, 'SELECT * FROM accounts ORDER BY address').all()
        : stmt(ctx, 'SELECT * FROM accounts WHERE domain = ? ORDER BY address').all(normalizeDomain(domain))) as AccountRow[];
      return rows.map(toAccount);
    },
    setPassword(address: string, passwordHash: string | null): void {
      stmt(ctx, 'UPDATE accounts SET password_hash = ? WHERE id = ?').run(passwordHash, accountRow(ctx, address).id);
    },
    setQuota(address: string, quotaBytes: number | null): void {
      stmt(ctx, 'UPDATE accounts SET quota_bytes = ? WHERE id = ?').run(quotaBytes, accountRow(ctx, address).id);
    },
    removeAccount(address: string): void {
      const row = accountRow(ctx, address);
      const boxes = stmt(ctx, 'SELECT id FROM mailboxes WHERE account_id = ?').all(row.id) as { id: number }[];
      for (const b of boxes) deleteMailboxRow(ctx, b.id);
      stmt(ctx, 'DELETE FROM accounts WHERE id = ?').run(row.id);
    },
    addAlias(alias: Alias): Alias {
      const [source, domain] = normalizeAddress(alias.source, true);
      const targets = alias.targets.map((t) => t.trim()).filter((t) => t.length > 0);
      if (targets.length === 0) throw new StoreError('invalid', `alias ${source} needs at least one target`);
      requireDomain(ctx, domain);
      if (addressTaken(ctx, source)) throw new StoreError('exists', `address ${source} exists`);
      stmt(ctx, 'INSERT INTO aliases (source, domain, targets) VALUES (?, ?, ?)').run(source, domain, JSON.stringify(targets));
      return { source, targets };
    },
    getAlias(source: string): Alias | null {
      const [src] = normalizeAddress(source, true);
      const r = stmt(ctx, 'SELECT source, targets FROM aliases WHERE source = ?').get(src) as { source: string; targets: string } | undefined;
      return r ? toAlias(r) : null;
    },
    listAliases(domain?: string): Alias[] {
      const rows = (domain === undefined
        ? stmt(ctx, 'SELECT source, targets FROM aliases ORDER BY source').all()
        : stmt(ctx, 'SELECT source, targets FROM aliases WHERE domain = ? ORDER BY source').all(normalizeDomain(domain))) as {
        source: string;
        targets: string;
      }[];
      return rows.map(toAlias);
    },
    removeAlias(source: string): void {
      const [src] = normalizeAddress(source, true);
      if (stmt(ctx, 'DELETE FROM aliases WHERE source = ?').run(src).changes === 0) throw new StoreError('not_found', `alias ${src} not found`);
    },
  };
}
