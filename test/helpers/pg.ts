/*
 * Throw-away PostgreSQL databases for tests and benchmarks.
 * Connects to CARTERO_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), creates a
 * uniquely named database and hands back its URL with a drop function. When the server cannot be
 * reached the caller gets { skipped } to report, except in CI (CI=true), where that is a failure.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

function adminUrl(): string {
  return process.env.CARTERO_TEST_PG_URL || DEFAULT_TEST_PG_URL;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The URL with any password masked, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return err.message || (typeof code === 'string' ? code : err.name);
  }
  return String(err);
}

async function drop(url: string, name: string): Promise<void> {
  await admin(url, async (c) => {
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
}

export async function createTestDatabase(): Promise<TestDatabase | { skipped: string }> {
  const url = adminUrl();
  const name = `cartero_test_${process.pid}_${randomBytes(5).toString('hex')}`;
  let client: pg.Client;
  try {
    client = await connect(url);
  } catch (err) {
    const reason = `PostgreSQL at ${redact(url)} unreachable: ${describeError(err)}`;
    if (process.env.CI === 'true') throw new Error(reason, { cause: err });
    return { skipped: reason };
  }
  try {
    // template0 is never connected to, so parallel test files can copy it at the same time
    await client.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await client.end().catch(() => {});
  }
  let dropped = false;
  return {
    url: withDatabase(url, name),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await drop(url, name);
    },
  };
}
