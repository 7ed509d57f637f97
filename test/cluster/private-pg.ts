/*
 * A private PostgreSQL server for tests that stop, start or demote the database: initdb + pg_ctl from
 * /usr/lib/postgresql/<newest>/bin in a temp dir, on a free loopback port, as the `postgres` user when
 * run as root. Never touches the machine's own cluster. Without the binaries the caller gets
 * { skipped } (a failure with CI=true).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../cli/helpers.js';

const run = promisify(execFile);

function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

export interface PrivatePg {
  port: number;
  /** a URL for `database` (default postgres) */
  url(database?: string): string;
  start(): Promise<void>;
  /** `fast`: clients are disconnected, as in an orderly restart; `immediate`: as in a crash */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** default_transaction_read_only on or off (a standby-like server and back), applied by reload */
  setReadOnly(on: boolean): Promise<void>;
  sql(text: string, database?: string): Promise<pg.QueryResultRow[]>;
  destroy(): Promise<void>;
}

export async function startPrivatePg(): Promise<PrivatePg | { skipped: string }> {
  const bin = binDir();
  if (!bin) {
    const reason = 'no PostgreSQL server binaries under /usr/lib/postgresql';
    if (process.env.CI === 'true') throw new Error(reason);
    return { skipped: reason };
  }
  const asRoot = userInfo().uid === 0;
  const dir = await mkdtemp(join(tmpdir(), 'cartero-pg-'));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const exec = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: dir }) : run(join(bin, tool), args, { cwd: dir });
  const data = join(dir, 'data');
  const port = await freePort();
  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60`;
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let running = false;
  const self: PrivatePg = {
    port,
    url,
    async start() {
      await exec('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
      running = true;
    },
    async stop(mode = 'fast') {
      await exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
      running = false;
    },
    async setReadOnly(on) {
      await self.sql(`ALTER SYSTEM SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
      await self.sql('SELECT pg_reload_conf()');
      // the reload reaches the postmaster and then each backend asynchronously: wait until a new
      // session sees it, then give existing sessions a moment to take it too
      const want = on ? 'on' : 'off';
      for (let i = 0; i < 50; i++) {
        const row = (await self.sql('SHOW default_transaction_read_only'))[0] as { default_transaction_read_only?: string } | undefined;
        if (row?.default_transaction_read_only === want) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 300));
    },
    async sql(text, database) {
      const client = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 5_000 });
      client.on('error', () => {});
      await client.connect();
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async destroy() {
      if (running) await self.stop('immediate').catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await self.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return self;
}
