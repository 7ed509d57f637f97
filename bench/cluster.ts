/*
 * Cluster benchmark (issue 8 item 7): the `cluster` lab (examples/topologies/cluster) on a fresh
 * database of the machine's PostgreSQL, with 1, 2 and 3 nodes running. Postfix's smtp-source loads the
 * running nodes (sessions and messages split evenly, one recipient per node so no single mailbox is
 * the bottleneck). Prints accepted msg/s (smtp-source's wall time), delivered msg/s (until the shared
 * queue is empty), CPU ms per message of the node processes and of the lab database's PostgreSQL
 * backends (/proc; WAL writer and checkpointer not counted), and then the time from a node's SIGKILL
 * to the last queue entry it had leased being delivered by another node. On a 2-core machine the nodes
 * and the database share the CPU: CPU per message is the number that shows how it would scale.
 * BENCH_CLUSTER_SCALE (default 1) multiplies the message count; BENCH_CLUSTER_LEASE (seconds, default
 * 3) is the nodes' delivery.lease_seconds.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config/load.js';
import { labDown, labKill, labStart, labUp, resolveTopology } from '../src/lab/runner.js';
import { readState } from '../src/lab/state.js';
import { openStore, type Store } from '../src/store/index.js';

const SCALE = Math.max(0.01, Number(process.env['BENCH_CLUSTER_SCALE'] ?? '1') || 1);
const COUNT = Math.max(30, Math.round(1500 * SCALE));
const SESSIONS = 12;
const SIZE = 4096;
const LEASE_SECONDS = Math.max(1, Math.round(Number(process.env['BENCH_CLUSTER_LEASE'] ?? '3') || 3));
const NODES = ['node1', 'node2', 'node3'] as const;
const RCPTS = ['alice@example.org', 'bob@example.org', 'carol@example.org'];
/** Linux's USER_HZ: /proc stat times are in these ticks */
const TICK_MS = 10;

function cpuMs(pid: number | null): number {
  if (pid === null) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** smtp-source against one node; resolves with wall seconds (rejects on failure). */
function smtpSource(address: string, sessions: number, count: number, to: string): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('smtp-source', ['-s', String(sessions), '-m', String(count), '-l', String(SIZE), '-f', 'load@bench.test', '-t', to, `${address}:2525`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve((performance.now() - start) / 1000);
      else reject(new Error(`smtp-source to ${address} failed (${code}): ${err.trim().slice(0, 300)}`));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, ms: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

interface Row {
  nodes: number;
  count: number;
  acceptedPerSec: number;
  deliveredPerSec: number;
  nodeCpuMsPerMsg: number;
  pgCpuMsPerMsg: number;
}

/** CPU of the PostgreSQL backends connected to `database` (pid → ms), read through /proc. */
async function backendCpu(admin: pg.Client, database: string): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  return new Map(rows.map((r) => [r.pid, cpuMs(r.pid)]));
}

export async function main(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source')) {
    console.log('# cluster bench needs smtp-source (Debian package postfix); install it as root and rerun');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'cartero-bench-cluster-'));
  // the lab's topology with a short lease, so a dead node's entries come back quickly
  const topology = join(root, 'cluster');
  cpSync(resolveTopology('cluster'), topology, { recursive: true });
  for (const n of NODES) {
    const file = join(topology, `${n}.yaml`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/lease_seconds: \d+/, `lease_seconds: ${LEASE_SECONDS}`).replace(/level: info/, 'level: warn'));
  }
  const dir = join(root, 'state');
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const state = await labUp({ topologyDir: topology, stateDir: dir });
  const config = loadConfig(state.nodes['node1']!.config);
  if (config.store.backend !== 'postgres' || !state.postgres) throw new Error('the cluster lab must run on PostgreSQL');
  const store: Store = await openStore({ backend: 'postgres', url: config.store.url, pool_size: 2 }, { migrate: false });
  const admin = new pg.Client({ connectionString: state.postgres.server });
  admin.on('error', () => undefined);
  await admin.connect();
  const database = state.postgres.database;
  const pidOf = (n: string): number | null => readState(dir).nodes[n]!.pid;
  const rows: Row[] = [];
  let redelivery = '';
  try {
    // 1, 2, 3 nodes: the others stopped gracefully (they leave the registry)
    await labKill(dir, 'node3', 'SIGTERM');
    await labKill(dir, 'node2', 'SIGTERM');
    for (let n = 1; n <= 3; n++) {
      if (n > 1) await labStart(dir, NODES[n - 1]!);
      const running = NODES.slice(0, n);
      const nodeCpu0 = running.map((x) => cpuMs(pidOf(x)));
      const pg0 = await backendCpu(admin, database);
      const t0 = performance.now();
      const per = Math.floor(COUNT / n);
      const walls = await Promise.all(running.map((x, i) => smtpSource(state.nodes[x]!.address, Math.max(1, Math.floor(SESSIONS / n)), per, RCPTS[i]!)));
      const acceptedSec = Math.max(...walls);
      const drained = await waitFor(async () => (await store.queue.counts(Date.now())).active === 0, 600_000, 50);
      const deliveredSec = (performance.now() - t0) / 1000;
      const nodeCpu = running.reduce((sum, x, i) => sum + cpuMs(pidOf(x)) - nodeCpu0[i]!, 0);
      const pg1 = await backendCpu(admin, database);
      let pgCpu = 0;
      for (const [pid, ms] of pg1) pgCpu += ms - (pg0.get(pid) ?? 0);
      const count = per * n;
      if (!drained) console.log(`# ${n} node(s): the queue did not drain within 600 s`);
      rows.push({ nodes: n, count, acceptedPerSec: count / acceptedSec, deliveredPerSec: count / deliveredSec, nodeCpuMsPerMsg: nodeCpu / count, pgCpuMsPerMsg: pgCpu / count });
    }

    // a node's death: smtp-source loads node2 and node3; node1 is SIGKILLed while it holds leases
    const load = Promise.all([smtpSource(state.nodes['node2']!.address, 6, Math.round(COUNT / 2), RCPTS[1]!), smtpSource(state.nodes['node3']!.address, 6, Math.round(COUNT / 2), RCPTS[2]!)]);
    const owner = `node1.example.org:${pidOf('node1')}`;
    let held: string[] = [];
    await waitFor(async () => {
      const now = Date.now();
      held = (await store.queue.list()).filter((e) => e.leaseOwner === owner && (e.leaseExpiresAt ?? 0) > now).map((e) => e.id);
      return held.length > 0;
    }, 120_000, 20);
    const killedAt = performance.now();
    await labKill(dir, 'node1', 'SIGKILL');
    const leasedAtDeath = (await store.queue.list()).filter((e) => e.leaseOwner === owner && (e.leaseExpiresAt ?? 0) > Date.now()).map((e) => e.id);
    const pending = new Set(leasedAtDeath);
    await waitFor(async () => {
      const left = new Set((await store.queue.list()).map((e) => e.id));
      for (const id of pending) if (!left.has(id)) pending.delete(id);
      return pending.size === 0;
    }, 120_000, 50);
    const redeliveredSec = (performance.now() - killedAt) / 1000;
    await load;
    redelivery =
      leasedAtDeath.length === 0
        ? `node1 was killed holding no lease (its deliveries finished first); nothing to redeliver`
        : `node1 SIGKILLed holding ${leasedAtDeath.length} leased entries: ${pending.size === 0 ? `all delivered by node2/node3 ${redeliveredSec.toFixed(1)} s later` : `${pending.size} still queued after 120 s`} (lease_seconds ${LEASE_SECONDS}, poll 200 ms)`;
  } finally {
    await store.close();
    await admin.end().catch(() => undefined);
    await labDown(dir);
    rmSync(root, { recursive: true, force: true });
  }

  console.log(`\ncluster benchmark (smtp-source, ${SIZE / 1024} KB messages, ${SESSIONS} sessions split over the running nodes, scale ${SCALE}; nodes and PostgreSQL share this machine's CPUs)`);
  console.log('| nodes | messages | accepted msg/s | delivered msg/s | node CPU ms/msg | PostgreSQL backend CPU ms/msg |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.nodes} | ${r.count} | ${r.acceptedPerSec.toFixed(0)} | ${r.deliveredPerSec.toFixed(0)} | ${r.nodeCpuMsPerMsg.toFixed(2)} | ${r.pgCpuMsPerMsg.toFixed(2)} |`);
  }
  console.log(`\nredelivery after a node's death: ${redelivery}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
