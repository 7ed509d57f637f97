/*
 * The lab's shared PostgreSQL database: a topology with `postgres: { database: fresh }` gets a database
 * of its own on an existing server (the machine's, or one a test started), created at `lab up` and
 * dropped at `lab down`, so cluster labs never see each other's rows. Only names this module made
 * (cartero_lab_<hex>) are ever dropped, whatever a damaged state file says. Errors are LabError with
 * the server address (password masked).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Failover } from '../store/backends/postgres/failover.js';
import { parseMultiHostUrl, type ParsedUrl } from '../store/backends/postgres/hosts.js';
import { LabError } from './state.js';

/** The server a lab database is created on when neither the topology nor the caller names one. */
export const DEFAULT_LAB_PG_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

const LAB_DATABASE = /^cartero_lab_[0-9a-f]{8,32}$/;

export function isLabDatabaseName(name: string): boolean {
  return LAB_DATABASE.test(name);
}

/** The server URL with any password masked, for messages. Multi-host URLs (h1,h2) are masked too. */
export function redactUrl(url: string): string {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (m && m[2]!.includes(',')) {
    const [, scheme = '', authority = '', tail = ''] = m;
    const at = authority.lastIndexOf('@');
    const user = at < 0 ? '' : authority.slice(0, at);
    const colon = user.indexOf(':');
    return `${scheme}${colon < 0 ? user : `${user.slice(0, colon)}:***`}${at < 0 ? '' : '@'}${authority.slice(at + 1)}${tail}`;
  }
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
}

function notPostgres(server: string): LabError {
  return new LabError(`postgres.server: ${redactUrl(server)} is not a postgres:// URL`);
}

/**
 * `server` with its database part replaced by `database` (query options such as sslmode and
 * target_session_attrs are kept). The WHATWG URL parser refuses libpq's multi-host form
 * (`postgres://h1:5432,h2:5433/db`), so that one is checked by the store's own parser (hosts.ts) and
 * rewritten as text.
 */
export function databaseUrl(server: string, database: string): string {
  let multi: ParsedUrl | null;
  try {
    multi = parseMultiHostUrl(server);
  } catch (err) {
    throw new LabError(`postgres.server: ${redactUrl(server)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (multi && multi.hosts.length > 1) {
    const m = /^(postgres(?:ql)?:\/\/[^/?#]*)(?:\/[^?#]*)?(\?[^#]*)?$/s.exec(server);
    if (!m) throw notPostgres(server);
    return `${m[1]}/${database}${m[2] ?? ''}`;
  }
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    throw notPostgres(server);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw notPostgres(server);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A client for `server`; a multi-host URL connects to its writable server, as the nodes do. */
function clientFor(server: string): pg.Client {
  let multi: ParsedUrl | null = null;
  try {
    multi = parseMultiHostUrl(server);
  } catch {
    multi = null; // pg reports the bad URL at connect
  }
  if (!multi) return new pg.Client({ connectionString: server, connectionTimeoutMillis: 5_000 });
  const failover = new Failover(multi, {}, 5_000);
  return new failover.Client({ connectionString: failover.url, connectionTimeoutMillis: 5_000 });
}

async function onServer<T>(server: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = clientFor(server);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new LabError(`cannot reach PostgreSQL at ${redactUrl(server)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates an empty database for a lab; returns its name and URL. */
export async function createLabDatabase(server: string): Promise<{ name: string; url: string }> {
  const name = `cartero_lab_${randomBytes(6).toString('hex')}`;
  const url = databaseUrl(server, name);
  await onServer(server, async (c) => {
    try {
      // template0: nobody is connected to it, so labs and tests may copy it at the same time
      await c.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
    } catch (err) {
      throw new LabError(`cannot create the lab database on ${redactUrl(server)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  });
  return { name, url };
}

/** Drops a lab database, cutting off any session still in it. Refuses names it did not make. */
export async function dropLabDatabase(server: string, name: string): Promise<void> {
  if (!isLabDatabaseName(name)) throw new LabError(`refusing to drop "${name.slice(0, 60)}": not a lab database name`);
  await onServer(server, async (c) => {
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
}
