/*
 * PostgreSQL servers a lab runs itself (topology `postgres: { replication: ... }`): a primary and a
 * streaming-replication standby made with PostgreSQL's own tools (initdb, pg_basebackup -R with a
 * replication slot, pg_ctl start/stop/promote), both on free loopback ports, in a temp directory of
 * their own (a lab state directory under a 0700 home is not reachable by the `postgres` user, which
 * runs them when we are root: the server refuses to run as root). Never touches the machine's own
 * clusters. The description (ports, directories, options) is plain data kept in the lab's state.json,
 * so any later `cartero lab` command can stop, start, promote or inspect the servers.
 * Lab settings only: fsync and full_page_writes are off (a killed process loses nothing the kernel
 * holds; an OS crash could, which a lab does not rehearse).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { LabError } from './state.js';

const run = promisify(execFile);

export type PgServerName = 'primary' | 'standby';

export interface PgServerSpec {
  name: PgServerName;
  port: number;
  /** the data directory */
  data: string;
  log: string;
  /** the postgres options pg_ctl passes (`-o`); kept so a restart gets the same settings */
  options: string;
}

export interface PgServers {
  /** the temp directory holding both data directories, sockets and logs (removed by destroy) */
  dir: string;
  /** the PostgreSQL bin directory (initdb, pg_ctl, pg_basebackup) */
  bin: string;
  /** the user the servers run as (`postgres` when the lab runs as root), or null: ourselves */
  runAs: string | null;
  /** synchronous_commit = remote_apply with synchronous_standby_names = '*' on the primary */
  synchronous: boolean;
  servers: PgServerSpec[];
}

/** The newest /usr/lib/postgresql/<version>/bin with initdb (Debian's layout), or null. */
export function pgBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_basebackup')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  await new Promise((r) => server.close(r));
  if (!addr || typeof addr !== 'object') throw new LabError('no free port for PostgreSQL');
  return addr.port;
}

function tool(s: Pick<PgServers, 'bin' | 'runAs' | 'dir'>, name: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  const file = join(s.bin, name);
  const call = s.runAs ? run('runuser', ['-u', s.runAs, '--', file, ...args], { cwd: s.dir, timeout: timeoutMs }) : run(file, args, { cwd: s.dir, timeout: timeoutMs });
  return call.catch((err: unknown) => {
    const e = err as { stderr?: string; message?: string };
    throw new LabError(`PostgreSQL ${name} ${args.slice(0, 3).join(' ')}: ${(e.stderr || e.message || String(err)).trim().split('\n').slice(-3).join(' / ')}`, { cause: err });
  });
}

function spec(s: PgServers, name: PgServerName): PgServerSpec {
  const found = s.servers.find((x) => x.name === name);
  if (!found) throw new LabError(`no PostgreSQL server "${name}" in this lab`);
  return found;
}

/** A single-host URL of one server, for `database` (default postgres). */
export function serverUrl(server: Pick<PgServerSpec, 'port'>, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${server.port}/${database}`;
}

/** The URL the nodes use: both servers, writes going to whichever is the primary now. */
export function pairUrl(s: PgServers, database: string): string {
  return `postgres://postgres@${s.servers.map((x) => `127.0.0.1:${x.port}`).join(',')}/${database}?target_session_attrs=read-write`;
}

/** pg_ctl's -o text is run by /bin/sh: quote every value. */
function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

function optionsFor(dir: string, port: number, settings: Record<string, string>): string {
  const all: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '16MB',
    max_connections: '100',
    wal_level: 'replica',
    max_wal_senders: '5',
    max_replication_slots: '5',
    hot_standby: 'on',
    // the slot keeps WAL for a stopped standby anyway; this bounds nothing, it only helps a fresh one
    wal_keep_size: '64MB',
    ...settings,
  };
  return Object.entries(all)
    .map(([k, v]) => `-c ${k}=${shellQuote(v)}`)
    .join(' ');
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, timeoutMs = 5_000): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * initdb a primary, start it, copy it with `pg_basebackup -R -C -S` (a standby.signal, primary_conninfo
 * and a physical replication slot, so the standby never falls behind for lack of WAL), start the standby
 * and wait until the primary sees it streaming. With `synchronous`, only the primary has
 * synchronous_standby_names: the standby, once promoted, must not wait for a standby it does not have.
 * On failure everything started is stopped and the directory removed.
 */
export async function startPgServers(options: { synchronous: boolean; tmpRoot?: string; bin?: string }): Promise<PgServers> {
  const bin = options.bin ?? pgBinDir();
  if (!bin) throw new LabError('this lab starts its own PostgreSQL servers and needs their binaries under /usr/lib/postgresql/<version>/bin (Debian: apt install postgresql)');
  const asRoot = userInfo().uid === 0;
  const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), 'cartero-lab-pg-'));
  const s: PgServers = { dir, bin, runAs: asRoot ? 'postgres' : null, synchronous: options.synchronous, servers: [] };
  try {
    if (asRoot) {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      await chown(dir, uid, gid);
    }
    const [p1, p2] = [await freePort(), await freePort()];
    const primary: PgServerSpec = {
      name: 'primary',
      port: p1,
      data: join(dir, 'primary'),
      log: join(dir, 'primary.log'),
      options: optionsFor(dir, p1, { cluster_name: 'primary', ...(options.synchronous ? { synchronous_commit: 'remote_apply', synchronous_standby_names: '*' } : {}) }),
    };
    const standby: PgServerSpec = { name: 'standby', port: p2, data: join(dir, 'standby'), log: join(dir, 'standby.log'), options: optionsFor(dir, p2, { cluster_name: 'standby' }) };
    s.servers.push(primary, standby);
    await tool(s, 'initdb', ['-D', primary.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await startPgServer(s, 'primary');
    await tool(s, 'pg_basebackup', ['-D', standby.data, '-R', '-C', '-S', 'cartero_lab_standby', '-X', 'stream', '--no-sync', '-h', '127.0.0.1', '-p', String(p1), '-U', 'postgres']);
    await startPgServer(s, 'standby');
    const end = Date.now() + 30_000;
    for (;;) {
      const rows = await query<{ state: string }>(serverUrl(primary), "SELECT state FROM pg_stat_replication WHERE application_name = 'standby'");
      if (rows.some((r) => r.state === 'streaming')) break;
      if (Date.now() > end) throw new LabError(`the standby did not start streaming within 30 s; see ${standby.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return s;
  } catch (err) {
    await destroyPgServers(s).catch(() => undefined);
    throw err;
  }
}

export async function startPgServer(s: PgServers, name: PgServerName): Promise<void> {
  const x = spec(s, name);
  await tool(s, 'pg_ctl', ['-D', x.data, '-o', x.options, '-l', x.log, '-w', '-t', '30', 'start']);
}

/** `fast`: an orderly stop; `immediate`: as a crash (no shutdown checkpoint, clients cut off). */
export async function stopPgServer(s: PgServers, name: PgServerName, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  const x = spec(s, name);
  await tool(s, 'pg_ctl', ['-D', x.data, '-m', mode, '-w', '-t', '30', 'stop']);
}

/** `pg_ctl promote -w`: returns once the standby accepts writes. */
export async function promotePgServer(s: PgServers, name: PgServerName): Promise<void> {
  const x = spec(s, name);
  await tool(s, 'pg_ctl', ['-D', x.data, '-w', '-t', '30', 'promote']);
}

/** The postmaster's pid from its pid file while that process exists, else null. */
export function pgServerPid(server: PgServerSpec): number | null {
  try {
    const pid = Number(readFileSync(join(server.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export interface PgServerStatus {
  name: PgServerName;
  address: string;
  pid: number | null;
  state: 'up' | 'down';
  /** what the server says it is now; null when it does not answer */
  role: 'primary' | 'standby' | null;
  data: string;
  log: string;
}

export async function pgServersStatus(s: PgServers): Promise<PgServerStatus[]> {
  return Promise.all(
    s.servers.map(async (x) => {
      const pid = pgServerPid(x);
      let role: PgServerStatus['role'] = null;
      if (pid !== null) {
        try {
          const rows = await query<{ r: boolean }>(serverUrl(x), 'SELECT pg_is_in_recovery() AS r', 2_000);
          role = rows[0]?.r ? 'standby' : 'primary';
        } catch {
          role = null;
        }
      }
      return { name: x.name, address: `127.0.0.1:${x.port}`, pid, state: pid === null ? 'down' : 'up', role, data: x.data, log: x.log } satisfies PgServerStatus;
    }),
  );
}

/** Stops every server still running (fast, then immediate) and removes the directory. */
export async function destroyPgServers(s: PgServers): Promise<void> {
  for (const x of s.servers) {
    if (pgServerPid(x) === null) continue;
    await stopPgServer(s, x.name, 'fast').catch(() => stopPgServer(s, x.name, 'immediate').catch(() => undefined));
  }
  await rm(s.dir, { recursive: true, force: true });
}

/** Last resort at process exit (synchronous): SIGKILL-like stop of every server, then remove the directory. */
export function destroyPgServersSync(s: PgServers): void {
  for (const x of s.servers) {
    if (pgServerPid(x) === null) continue;
    const file = join(s.bin, 'pg_ctl');
    const args = ['-D', x.data, '-m', 'immediate', '-w', '-t', '10', 'stop'];
    if (s.runAs) spawnSync('runuser', ['-u', s.runAs, '--', file, ...args], { cwd: s.dir, stdio: 'ignore', timeout: 15_000 });
    else spawnSync(file, args, { cwd: s.dir, stdio: 'ignore', timeout: 15_000 });
  }
  rmSync(s.dir, { recursive: true, force: true });
}
