/*
 * A private PostgreSQL primary and streaming-replication standby for tests that kill the primary and
 * promote the standby: the lab's own server code (src/lab/pg-servers.ts: initdb, pg_basebackup -R -C -S,
 * pg_ctl) in a temp dir on free loopback ports, as the `postgres` user when run as root. Never touches the
 * machine's own cluster. Without the binaries the caller gets { skipped } (a failure with CI=true).
 */
import pg from 'pg';
import { destroyPgServers, destroyPgServersSync, pairUrl, pgBinDir, promotePgServer, serverUrl, startPgServer, startPgServers, stopPgServer, type PgServerName, type PgServers } from '../../src/lab/pg-servers.js';

export interface PrivatePgPair {
  servers: PgServers;
  /** a single-host URL of one server for `database` (default postgres) */
  url(name: PgServerName, database?: string): string;
  /** both servers, target_session_attrs=read-write: what a node's store.url is */
  pairUrl(database: string): string;
  start(name: PgServerName): Promise<void>;
  /** `immediate` is a crash: no shutdown checkpoint, clients cut off */
  stop(name: PgServerName, mode?: 'fast' | 'immediate'): Promise<void>;
  promote(name: PgServerName): Promise<void>;
  sql(name: PgServerName, text: string, params?: unknown[], database?: string): Promise<pg.QueryResultRow[]>;
  destroy(): Promise<void>;
}

export async function startPrivatePgPair(options: { synchronous: boolean }): Promise<PrivatePgPair | { skipped: string }> {
  if (!pgBinDir()) {
    const reason = 'no PostgreSQL server binaries (initdb, pg_basebackup) under /usr/lib/postgresql';
    if (process.env.CI === 'true') throw new Error(reason);
    return { skipped: reason };
  }
  const servers = await startPgServers({ synchronous: options.synchronous });
  const last = () => destroyPgServersSync(servers);
  process.once('exit', last);
  const spec = (name: PgServerName) => servers.servers.find((s) => s.name === name)!;
  const self: PrivatePgPair = {
    servers,
    url: (name, database) => serverUrl(spec(name), database),
    pairUrl: (database) => pairUrl(servers, database),
    start: (name) => startPgServer(servers, name),
    stop: (name, mode = 'fast') => stopPgServer(servers, name, mode),
    promote: (name) => promotePgServer(servers, name),
    async sql(name, text, params = [], database) {
      const client = new pg.Client({ connectionString: serverUrl(spec(name), database), connectionTimeoutMillis: 5_000 });
      client.on('error', () => {});
      await client.connect();
      try {
        return (await client.query(text, params)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async destroy() {
      process.off('exit', last);
      await destroyPgServers(servers);
    },
  };
  return self;
}
