/*
 * The lab runner behind `cartero lab`: brings a topology up on one machine — a lab DNS server and one
 * `cartero serve` process per node, each on its own 127.0.0.x with its own store under the state
 * directory — and kills, restarts, inspects and removes it. Processes are detached and recorded by pid
 * in state.json, so the command that started them may exit; before any signal the pid's command line
 * is checked to still be the process we started (pids are reused), and nothing is ever killed by name.
 * Failures are LabError with a message for the administrator, including the tail of the node's log.
 */
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { hashPassword } from '../auth/password.js';
import { ConfigError, loadConfig, parseYaml } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { configuredListeners, type Config, type ListenerSettings } from '../config/schema.js';
import { provisionAccount } from '../directory/accounts.js';
import type { Fault } from '../dns/authority.js';
import { isStoreError, openStore, type QueueCounts } from '../store/index.js';
import { createLabDatabase, DEFAULT_LAB_PG_SERVER, dropLabDatabase, redactUrl } from './database.js';
import { destroyPgServers, pairUrl, pgServerPid, pgServersStatus, promotePgServer, serverUrl, startPgServer, startPgServers, stopPgServer, type PgServerName, type PgServerStatus } from './pg-servers.js';
import { LabError, paths, readDnsReady, readState, writeAtomic, writeState, type LabState, type NodeState } from './state.js';
import { findNode, parseTopology, relayRecipientTable, zoneOf, type Topology, type TopologyNode } from './topology.js';

export { LabError } from './state.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The repository (or installed package) root: where bin/cartero.js and examples/ live. */
export function packageRoot(): string {
  let dir = HERE;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'cartero.js'))) return dir;
    dir = dirname(dir);
  }
  throw new LabError(`cannot find bin/cartero.js above ${HERE}`);
}

export function defaultTopologiesDir(): string {
  return join(packageRoot(), 'examples', 'topologies');
}

/** `t1` finds examples/topologies/t1-backup-mx; a path to a directory is taken as is. */
export function resolveTopology(name: string, topologiesDir = defaultTopologiesDir()): string {
  if (name.includes('/') && existsSync(join(name, 'topology.yaml'))) return resolve(name);
  if (!/^[a-z0-9-]+$/i.test(name)) throw new LabError(`unknown topology "${name.slice(0, 60)}"`);
  let entries: string[] = [];
  try {
    entries = readdirSync(topologiesDir).sort();
  } catch {
    throw new LabError(`cannot read the topologies directory ${topologiesDir}`);
  }
  const exact = entries.find((e) => e === name);
  const matches = exact ? [exact] : entries.filter((e) => e.startsWith(`${name}-`));
  if (matches.length !== 1) {
    const known = entries.filter((e) => existsSync(join(topologiesDir, e, 'topology.yaml')));
    throw new LabError(`${matches.length === 0 ? 'unknown' : 'ambiguous'} topology "${name}" (known: ${known.join(', ') || 'none'})`);
  }
  const dir = join(topologiesDir, matches[0]!);
  if (!existsSync(join(dir, 'topology.yaml'))) throw new LabError(`${dir} has no topology.yaml`);
  return dir;
}


export function loadTopology(dir: string): Topology {
  let text: string;
  try {
    text = readFileSync(join(dir, 'topology.yaml'), 'utf8');
  } catch (err) {
    throw new LabError(`cannot read ${join(dir, 'topology.yaml')}: ${(err as Error).message}`);
  }
  const parsed = parseTopology(text);
  if ('problems' in parsed) throw new LabError(parsed.problems.map((p) => formatProblem(join(dir, 'topology.yaml'), p)).join('\n'));
  return parsed.topology;
}

// ---------------------------------------------------------------- processes

/** Our child is alive: the pid exists, is not a zombie, and its command line names `marker`. */
export function isOurs(pid: number | null, marker: string): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) Z/.test(stat)) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker);
  } catch {
    return process.platform !== 'linux'; // no /proc: trust kill(0)
  }
}

/** "running", "stopped" (SIGSTOP) or "dead". */
export function processState(pid: number | null, marker: string): 'running' | 'stopped' | 'dead' {
  if (!isOurs(pid, marker)) return 'dead';
  try {
    return /^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) ? 'stopped' : 'running';
  } catch {
    return 'running';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid: number, marker: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (isOurs(pid, marker)) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

/**
 * The last `lines` lines of a log; with `sinceStart`, only what was written since the lab's last start
 * marker (the node's own lines of that start). "(no log)" when it cannot be read.
 */
function tail(file: string, { lines = 15, sinceStart = false } = {}): string {
  let text: string[];
  try {
    text = readFileSync(file, 'utf8').trimEnd().split('\n');
  } catch {
    return '(no log)';
  }
  let from = 0;
  if (sinceStart) for (let i = text.length - 1; i > 0 && from === 0; i--) if (/ lab: starting /.test(text[i]!)) from = i;
  return text.slice(from).slice(-lines).join('\n');
}

/**
 * How children this process spawned ended (pid -> "exit code 1", "signal SIGSEGV"): a process that dies
 * before it can log (a crash, a signal) says nothing in its log, and its parent is the only witness.
 */
const childExits = new Map<number, string>();

function exitOf(pid: number | null): string {
  const how = pid === null ? undefined : childExits.get(pid);
  return how ? ` (${how})` : '';
}

function spawnDetached(args: string[], logFile: string, env: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env });
    child.on('error', () => undefined);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new LabError(`cannot start ${args.join(' ')}`);
    child.once('exit', (code, sig) => childExits.set(pid, sig ? `signal ${sig}` : `exit code ${code}`));
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** node arguments that run a TypeScript entry when we run from source (tsx), nothing when compiled. */
function entryArgs(file: string): string[] {
  return file.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), file] : [file];
}

function labMainPath(): string {
  const ext = fileURLToPath(import.meta.url).endsWith('.ts') ? 'ts' : 'js';
  return join(HERE, '..', 'cli', `lab-main.${ext}`);
}

// ---------------------------------------------------------------- node configuration

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The final configuration of a node, as the lab runs it: the topology's file with the store under the
 * state directory (embedded) or in the lab's own database (postgres, when the lab made one), the lab
 * DNS server as resolver and the pid file beside it. Written to `<state>/nodes/<node>/cartero.yaml`,
 * validated like any node config.
 */
export function finalNodeConfig(raw: unknown, nodeDir: string, dnsServer: string, labDatabaseUrl?: string): Record<string, unknown> {
  if (!isRecord(raw)) throw new LabError('the node configuration must be a YAML mapping');
  const out: Record<string, unknown> = structuredClone(raw);
  const store = isRecord(out['store']) ? out['store'] : { backend: 'embedded' };
  if ((store['backend'] ?? 'embedded') === 'embedded') out['store'] = { ...store, backend: 'embedded', path: join(nodeDir, 'data') };
  else if (store['backend'] === 'postgres' && labDatabaseUrl !== undefined) out['store'] = { ...store, url: labDatabaseUrl };
  const dns = isRecord(out['dns']) ? out['dns'] : {};
  out['dns'] = { ...dns, servers: [dnsServer] };
  out['pid_file'] = join(nodeDir, 'cartero.pid');
  return out;
}

function writeNodeConfig(topologyDir: string, node: TopologyNode, nodeDir: string, dnsServer: string, topology: Topology, labDatabaseUrl?: string): Config {
  const source = join(topologyDir, node.config);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new LabError(`node ${node.name}: cannot read ${source}: ${(err as Error).message}`);
  }
  const raw = parseYaml(text);
  if ('problems' in raw) throw new LabError(raw.problems.map((p) => formatProblem(source, p)).join('\n'));
  mkdirSync(nodeDir, { recursive: true });
  for (const f of node.files) {
    try {
      copyFileSync(join(topologyDir, f), join(nodeDir, f));
    } catch (err) {
      throw new LabError(`node ${node.name}: cannot copy ${join(topologyDir, f)}: ${(err as Error).message}`);
    }
  }
  const file = join(nodeDir, 'cartero.yaml');
  writeFileSync(file, `# written by cartero lab from ${source}\n${stringify(finalNodeConfig(raw.value, nodeDir, dnsServer, labDatabaseUrl))}`);
  syncRelayRecipients(topology, node, nodeDir);
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) throw new LabError(`node ${node.name} (${source}):\n${err.lines().join('\n')}`);
    throw err;
  }
  for (const l of configuredListeners(config)) {
    if (l.address !== node.address) throw new LabError(`node ${node.name}: ${l.key} listens on ${l.address}, not on the node's address ${node.address}`);
  }
  return config;
}

/** Writes a backup MX's recipient list from the primary's accounts and aliases (the lab's "sync"). */
function syncRelayRecipients(topology: Topology, node: TopologyNode, nodeDir: string): void {
  if (!node.relay_recipients) return;
  const from = findNode(topology, node.relay_recipients.from);
  if (!from) throw new LabError(`node ${node.name}: relay_recipients.from names no node`);
  writeAtomic(join(nodeDir, node.relay_recipients.file), relayRecipientTable(from, { expandAliases: node.relay_recipients.expand_aliases }));
}

/** Domains, accounts and aliases of the topology, added when missing (a restarted lab keeps its store). */
async function provision(node: TopologyNode, config: Config): Promise<void> {
  const store = await openStore(config.store, { migrate: true });
  try {
    const domains = new Set([...config.domains, ...node.domains]);
    for (const a of node.accounts) domains.add(a.address.slice(a.address.indexOf('@') + 1));
    for (const d of domains) {
      if (config.relay_domains.includes(d)) continue;
      if (!(await store.directory.getDomain(d))) await store.directory.addDomain(d).catch((e: unknown) => void (isStoreError(e, 'exists') || rethrow(e)));
    }
    for (const a of node.accounts) {
      if (await store.directory.getAccount(a.address)) continue;
      await provisionAccount(store, a.address, a.password === null ? null : await hashPassword(a.password));
    }
    for (const [source, targets] of Object.entries(node.aliases)) {
      if (await store.directory.getAlias(source)) continue;
      await store.directory.addAlias({ source, targets });
    }
  } finally {
    await store.close();
  }
}

function rethrow(e: unknown): never {
  throw e;
}

function probe(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export function nodeListeners(config: Config): ListenerSettings[] {
  return configuredListeners(config);
}

/** Waits until every listener of the node accepts connections; fails early when the process died. */
async function waitNodeReady(name: string, n: NodeState, config: Config, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const l of configuredListeners(config)) {
    while (!(await probe(l.address, l.port))) {
      if (!isOurs(n.pid, n.config)) {
        await sleep(200); // lets the child's exit event (its code or signal) arrive
        throw new LabError(`node ${name} exited during start${exitOf(n.pid)}; its log since the start:\n${tail(n.log, { sinceStart: true })}`);
      }
      if (Date.now() > end) throw new LabError(`node ${name}: ${l.proto} ${l.address}:${l.port} did not answer within ${timeoutMs / 1000} s; its log since the start:\n${tail(n.log, { sinceStart: true })}`);
      await sleep(100);
    }
  }
}

function startNodeProcess(name: string, n: NodeState, env: NodeJS.ProcessEnv): number {
  const bin = join(packageRoot(), 'bin', 'cartero.js');
  writeFileSync(n.log, `--- ${new Date().toISOString()} lab: starting ${name}\n`, { flag: 'a' });
  return spawnDetached([bin, 'serve', '-c', n.config], n.log, env);
}

// ---------------------------------------------------------------- commands

export interface UpOptions {
  topologyDir: string;
  stateDir: string;
  /** per node and for the DNS server; default 30 s */
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * For a topology with `postgres: { database: fresh }`: the server to create the database on, ahead of
   * the topology's `postgres.server`, $CARTERO_LAB_PG_URL and 127.0.0.1:5432 (tests pass a private server).
   */
  postgresServer?: string;
}

function anyAlive(state: LabState, dir: string): boolean {
  return isOurs(state.dns.pid, paths.zone(dir)) || Object.values(state.nodes).some((n) => isOurs(n.pid, n.config));
}

export async function labUp(o: UpOptions): Promise<LabState> {
  const dir = resolve(o.stateDir);
  const timeout = o.startTimeoutMs ?? 30_000;
  const env = o.env ?? process.env;
  const topologyDir = resolve(o.topologyDir);
  const topology = loadTopology(topologyDir);
  if (existsSync(paths.state(dir))) {
    let old: LabState | null = null;
    try {
      old = readState(dir);
    } catch {
      old = null;
    }
    if (old && anyAlive(old, dir)) throw new LabError(`a lab (${old.topology}) is already up in ${dir}; run "cartero lab down --dir ${dir}" first`);
  }
  if (existsSync(dir)) {
    if (!existsSync(paths.state(dir)) && readdirSync(dir).length > 0) throw new LabError(`${dir} exists and is not a lab state directory; choose another --dir`);
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(join(dir, 'nodes'), { recursive: true });
  writeAtomic(paths.zone(dir), `${JSON.stringify(zoneOf(topology), null, 2)}\n`);
  writeAtomic(paths.faults(dir), '{}\n');

  // the DNS server first: every node's config names its port
  const dnsPid = spawnDetached(
    [...entryArgs(labMainPath()), 'dns', '--zone', paths.zone(dir), '--faults', paths.faults(dir), '--ready', paths.dnsReady(dir), '--address', '127.0.0.1'],
    paths.dnsLog(dir),
    env,
  );
  const state: LabState = {
    version: 1,
    topology: topology.name,
    topologyDir,
    createdAt: new Date().toISOString(),
    dns: { pid: dnsPid, address: '127.0.0.1', port: 1 },
    nodes: {},
  };
  writeState(dir, state);
  try {
    const end = Date.now() + timeout;
    let ready = readDnsReady(dir);
    while (!ready) {
      if (!isOurs(dnsPid, paths.zone(dir))) throw new LabError(`the lab DNS server exited during start${exitOf(dnsPid)}; its log ends:\n${tail(paths.dnsLog(dir))}`);
      if (Date.now() > end) throw new LabError(`the lab DNS server did not start within ${timeout / 1000} s`);
      await sleep(50);
      ready = readDnsReady(dir);
    }
    state.dns.port = ready.port;
    const dnsServer = `127.0.0.1:${ready.port}`;
    let labDatabaseUrl: string | undefined;
    if (topology.postgres?.replication) {
      // cluster-ha: the lab's own primary + standby; recorded before the database exists so that a
      // failure from here on still stops them (labDown below)
      const servers = await startPgServers({ synchronous: topology.postgres.replication.synchronous });
      const primary = servers.servers.find((x) => x.name === 'primary')!;
      state.postgres = { server: serverUrl(primary), database: '', servers };
      writeState(dir, state);
      const db = await createLabDatabase(serverUrl(primary));
      state.postgres.database = db.name;
      writeState(dir, state);
      labDatabaseUrl = pairUrl(servers, db.name);
    } else if (topology.postgres) {
      const server = o.postgresServer ?? topology.postgres.server ?? (env['CARTERO_LAB_PG_URL'] || DEFAULT_LAB_PG_SERVER);
      const db = await createLabDatabase(server);
      state.postgres = { server, database: db.name };
      writeState(dir, state);
      labDatabaseUrl = db.url;
    }
    const configs = new Map<string, Config>();
    for (const node of topology.nodes) {
      const nodeDir = paths.nodeDir(dir, node.name);
      const config = writeNodeConfig(topologyDir, node, nodeDir, dnsServer, topology, labDatabaseUrl);
      configs.set(node.name, config);
      state.nodes[node.name] = { address: node.address, config: join(nodeDir, 'cartero.yaml'), log: join(nodeDir, 'cartero.log'), pid: null, ...(node.role ? { role: node.role } : {}) };
    }
    // nodes sharing one database are provisioned one after the other (one directory, no racing inserts)
    if (topology.postgres) for (const node of topology.nodes) await provision(node, configs.get(node.name)!);
    else await Promise.all(topology.nodes.map((node) => provision(node, configs.get(node.name)!)));
    for (const node of topology.nodes) {
      const n = state.nodes[node.name]!;
      n.pid = startNodeProcess(node.name, n, env);
      writeState(dir, state);
    }
    await Promise.all(topology.nodes.map((node) => waitNodeReady(node.name, state.nodes[node.name]!, configs.get(node.name)!, timeout)));
    return state;
  } catch (err) {
    await labDown(dir).catch(() => undefined);
    throw err;
  }
}

/**
 * Stops every process of the lab (SIGTERM, then SIGKILL after `graceMs`), drops the lab's database if
 * it made one, and removes the state directory. A database that cannot be dropped is reported (LabError
 * naming it) after everything else is gone.
 */
export async function labDown(stateDir: string, graceMs = 12_000): Promise<{ stopped: string[]; dropped?: string }> {
  const dir = resolve(stateDir);
  const state = readState(dir);
  const procs: { name: string; pid: number; marker: string }[] = [];
  for (const [name, n] of Object.entries(state.nodes)) if (n.pid !== null && isOurs(n.pid, n.config)) procs.push({ name, pid: n.pid, marker: n.config });
  if (state.dns.pid !== null && isOurs(state.dns.pid, paths.zone(dir))) procs.push({ name: 'dns', pid: state.dns.pid, marker: paths.zone(dir) });
  for (const p of procs) {
    signal(p.pid, 'SIGCONT'); // a SIGSTOPped node must run to handle SIGTERM
    signal(p.pid, 'SIGTERM');
  }
  await Promise.all(
    procs.map(async (p) => {
      if (!(await waitGone(p.pid, p.marker, graceMs))) {
        signal(p.pid, 'SIGKILL');
        await waitGone(p.pid, p.marker, 5000);
      }
    }),
  );
  let dropError: unknown = null;
  const servers = state.postgres?.servers;
  const liveServers = servers ? servers.servers.filter((x) => pgServerPid(x) !== null).map((x) => `postgres ${x.name}`) : [];
  if (servers) {
    // the lab's own servers go away whole: nothing to drop
    await destroyPgServers(servers).catch((err: unknown) => void (dropError = err));
  } else if (state.postgres) await dropLabDatabase(state.postgres.server, state.postgres.database).catch((err: unknown) => void (dropError = err));
  rmSync(dir, { recursive: true, force: true });
  if (dropError !== null && servers) {
    throw new LabError(`the lab stopped, but its PostgreSQL servers in ${servers.dir} could not be stopped: ${dropError instanceof Error ? dropError.message : String(dropError)}`);
  }
  if (dropError !== null && state.postgres) {
    const why = dropError instanceof Error ? dropError.message : String(dropError);
    throw new LabError(`the lab stopped, but its database ${state.postgres.database} could not be dropped: ${why}; drop it by hand`);
  }
  const stopped = [...procs.map((p) => p.name), ...liveServers];
  return { stopped, ...(state.postgres && !servers ? { dropped: state.postgres.database } : {}) };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function nodeOf(state: LabState, name: string): NodeState {
  const n = Object.hasOwn(state.nodes, name) ? state.nodes[name] : undefined;
  if (!n) throw new LabError(`no node "${name.slice(0, 60)}" in this lab (nodes: ${Object.keys(state.nodes).join(', ')})`);
  return n;
}

export type LabSignal = 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT';

/** Sends a signal to one node. SIGKILL and SIGTERM wait until it is gone and forget its pid. */
export async function labKill(stateDir: string, name: string, sig: LabSignal = 'SIGKILL'): Promise<void> {
  const dir = resolve(stateDir);
  const state = readState(dir);
  const n = nodeOf(state, name);
  if (!isOurs(n.pid, n.config)) throw new LabError(`node ${name} is not running`);
  const pid = n.pid!;
  if (sig === 'SIGTERM') signal(pid, 'SIGCONT');
  signal(pid, sig);
  if (sig === 'SIGKILL' || sig === 'SIGTERM') {
    if (!(await waitGone(pid, n.config, sig === 'SIGTERM' ? 15_000 : 5000))) throw new LabError(`node ${name} (pid ${pid}) did not exit after ${sig}`);
    const fresh = readState(dir);
    nodeOf(fresh, name).pid = null;
    writeState(dir, fresh);
  } else {
    // the signal is delivered asynchronously; wait until /proc shows it so the caller can rely on it
    const want = sig === 'SIGSTOP' ? 'stopped' : 'running';
    const end = Date.now() + 2000;
    while (processState(pid, n.config) !== want && Date.now() < end) await sleep(10);
  }
}

/** Starts a node that is not running (after `kill`), re-syncing its recipient list first. */
export async function labStart(stateDir: string, name: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  const dir = resolve(stateDir);
  const state = readState(dir);
  const n = nodeOf(state, name);
  if (isOurs(n.pid, n.config)) throw new LabError(`node ${name} is already running (pid ${n.pid})`);
  const topology = loadTopology(state.topologyDir);
  const node = findNode(topology, name);
  if (node) syncRelayRecipients(topology, node, paths.nodeDir(dir, name));
  const config = loadConfig(n.config);
  n.pid = startNodeProcess(name, n, options.env ?? process.env);
  writeState(dir, state);
  await waitNodeReady(name, n, config, options.timeoutMs ?? 30_000);
}

/** Sets the lab DNS server's per-name faults (replacing the previous set) and waits until they are live. */
export async function setDnsFaults(stateDir: string, faults: Record<string, Fault>): Promise<void> {
  const dir = resolve(stateDir);
  const state = readState(dir);
  if (!isOurs(state.dns.pid, paths.zone(dir))) throw new LabError('the lab DNS server is not running');
  const before = readDnsReady(dir)?.generation ?? -1;
  writeAtomic(paths.faults(dir), `${JSON.stringify(faults)}\n`);
  signal(state.dns.pid!, 'SIGHUP');
  const end = Date.now() + 5000;
  while ((readDnsReady(dir)?.generation ?? -1) <= before) {
    if (Date.now() > end) throw new LabError(`the lab DNS server did not apply the faults; its log ends:\n${tail(paths.dnsLog(dir))}`);
    await sleep(20);
  }
}

export interface NodeStatus {
  node: string;
  role: string;
  address: string;
  /** "smtp 2525, submission 2587, imap 2143" */
  ports: string;
  pid: number | null;
  state: 'running' | 'stopped' | 'dead';
  /** queue counts read from the node's store; null when it could not be read */
  queue: QueueCounts | null;
  queueError?: string;
}

export function describePorts(config: Config): string {
  return configuredListeners(config)
    .map((l) => `${l.proto === 'smtp' && l.submission ? 'submission' : l.proto} ${l.port}`)
    .join(', ');
}

/** Reads a node's queue counts through its store (the embedded store is opened without migrating or writing). */
export async function queueCounts(config: Config): Promise<QueueCounts> {
  const store = await openStore(config.store, { migrate: false });
  try {
    return await store.queue.counts(Date.now());
  } finally {
    await store.close();
  }
}

/** The lab's database: its own servers (cluster-ha) with their role now, or the one it created a database on. */
export interface LabDatabaseStatus {
  database: string;
  /** the servers the lab started; empty when it uses an existing server */
  servers: PgServerStatus[];
  /** the existing server (password masked) when the lab did not start its own */
  server?: string;
}

async function databaseStatus(state: LabState): Promise<LabDatabaseStatus | null> {
  if (!state.postgres) return null;
  if (state.postgres.servers) return { database: state.postgres.database, servers: await pgServersStatus(state.postgres.servers) };
  return { database: state.postgres.database, servers: [], server: redactUrl(state.postgres.server) };
}

/** cluster-ha: stop one of the lab's PostgreSQL servers (`immediate` is a crash), start it, or promote the standby. */
export async function labPg(stateDir: string, name: PgServerName, action: 'stop' | 'crash' | 'start' | 'promote'): Promise<void> {
  const servers = readState(resolve(stateDir)).postgres?.servers;
  if (!servers) throw new LabError('this lab did not start PostgreSQL servers of its own (topology postgres.replication)');
  if (action === 'stop' || action === 'crash') await stopPgServer(servers, name, action === 'crash' ? 'immediate' : 'fast');
  else if (action === 'start') await startPgServer(servers, name);
  else await promotePgServer(servers, name);
}

export async function labStatus(stateDir: string): Promise<{ state: LabState; dns: 'running' | 'stopped' | 'dead'; nodes: NodeStatus[]; database: LabDatabaseStatus | null }> {
  const dir = resolve(stateDir);
  const state = readState(dir);
  const nodes: NodeStatus[] = [];
  for (const [name, n] of Object.entries(state.nodes)) {
    let ports = '?';
    let queue: QueueCounts | null = null;
    let queueError: string | undefined;
    try {
      const config = loadConfig(n.config);
      ports = describePorts(config);
      queue = await queueCounts(config);
    } catch (err) {
      queueError = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
    nodes.push({ node: name, role: n.role ?? '', address: n.address, ports, pid: n.pid, state: processState(n.pid, n.config), queue, ...(queueError ? { queueError } : {}) });
  }
  return { state, dns: processState(state.dns.pid, paths.zone(dir)), nodes, database: await databaseStatus(state) };
}

export function nodeConfig(stateDir: string, name: string): Config {
  return loadConfig(nodeOf(readState(resolve(stateDir)), name).config);
}
