/*
 * The two backends for cluster tests: an embedded store in a temp dir and a postgres store on a fresh
 * database of the machine's PostgreSQL (test/helpers/pg.ts), each with its cleanup.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

export interface OpenedStore {
  store: Store;
  /** opens another store on the same data (another "node"; embedded: the same directory) */
  another(): Promise<Store>;
  url: string | null;
  cleanup(): Promise<void>;
}

export async function openEmbedded(): Promise<OpenedStore> {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-cluster-'));
  const store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  const others: Store[] = [];
  return {
    store,
    url: null,
    async another() {
      const s = await openStore({ backend: 'embedded', path: join(dir, 'data') });
      others.push(s);
      return s;
    },
    async cleanup() {
      for (const s of [store, ...others]) await s.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function openPostgres(): Promise<OpenedStore | { skipped: string }> {
  const db = await createTestDatabase();
  if ('skipped' in db) return db;
  const store = await openStore({ backend: 'postgres', url: db.url, pool_size: 4 });
  const others: Store[] = [];
  return {
    store,
    url: db.url,
    async another() {
      const s = await openStore({ backend: 'postgres', url: db.url, pool_size: 4 });
      others.push(s);
      return s;
    },
    async cleanup() {
      for (const s of [store, ...others]) await s.close().catch(() => {});
      await db.drop();
    },
  };
}
