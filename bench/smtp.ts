/*
 * SMTP benchmark: Postfix's smtp-source loads Cartero (embedded store, local delivery into one mailbox)
 * and, in the same run, a private Postfix configured the same way (bench/postfix.ts). Prints accepted
 * and delivered msg/s, Cartero's event-loop delay p99 and RSS, and the ratio to Postfix.
 * Cases: 10,000 x 4 KB and 2,000 x 64 KB over 1, 10 and 50 sessions (BENCH_SMTP_SCALE=0.2 for a
 * quick run). While iterating: BENCH_SMTP_CASES=4x10,64x50 runs only those size(KB)xsessions cases,
 * BENCH_SMTP_POSTFIX=0 skips Postfix, BENCH_SMTP_PROF=DIR writes the Cartero node's CPU profile there,
 * BENCH_SMTP_NODE_FLAGS="--trace-gc" passes flags to the Cartero node.
 * Loopback only; every wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../src/store/index.js';
import { ensurePostfix, startPostfix } from './postfix.js';

const SCALE = Number(process.env.BENCH_SMTP_SCALE ?? 1);
const CARTERO_PORT = 2727;
const POSTFIX_PORT = 2626;
const RCPT = 'bench@example.test';
const CASES = [
  { size: 4096, count: 10_000, sessions: [1, 10, 50] },
  { size: 65_536, count: 2_000, sessions: [1, 10, 50] },
];
const DELIVERY_TIMEOUT_MS = 180_000;
/** "4x10,64x50": only these size(KB)xsessions cases */
const ONLY = process.env.BENCH_SMTP_CASES ? new Set(process.env.BENCH_SMTP_CASES.split(',').map((c) => c.trim())) : null;
const WITH_POSTFIX = process.env.BENCH_SMTP_POSTFIX !== '0';
const PROFILE_DIR = process.env.BENCH_SMTP_PROF;

interface Result {
  server: string;
  size: number;
  sessions: number;
  count: number;
  acceptedPerSec: number;
  deliveredPerSec: number;
  loopP99Ms: number | null;
  rssMb: number | null;
  /** CPU (user + system) the server spent per message, accept through delivery; null off Linux */
  cpuMsPerMsg: number | null;
  /** Cartero only: the part spent by its main thread (sessions, logging, hand-offs to the store) */
  mainCpuMsPerMsg: number | null;
}

/** Linux's USER_HZ: /proc stat times are in these ticks. */
const TICK_MS = 10;
const POSTFIX_DAEMONS = new Set(['master', 'smtpd', 'cleanup', 'qmgr', 'virtual', 'trivial-rewrite', 'anvil', 'proxymap']);

/** utime + stime (+ reaped children's when `children`) of one /proc stat file, in ms; null if unreadable. */
function statCpuMs(path: string, children: boolean): number | null {
  try {
    // the command name (field 2) may hold spaces: fields are counted after its closing parenthesis
    const f = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return ticks * TICK_MS;
  } catch {
    return null;
  }
}

/** CPU ms so far of the whole Cartero process and of its main thread. */
function carteroCpu(pid: number): { total: number; main: number } | null {
  const total = statCpuMs(`/proc/${pid}/stat`, false);
  const main = statCpuMs(`/proc/${pid}/task/${pid}/stat`, false);
  return total === null || main === null ? null : { total, main };
}

/** CPU ms so far of every Postfix daemon (exited ones count through master's reaped-children times). */
function postfixCpu(): number | null {
  let sum = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (POSTFIX_DAEMONS.has(comm)) sum += statCpuMs(`/proc/${pid}/stat`, comm === 'master') ?? 0;
    }
  } catch {
    return null;
  }
  return sum;
}

/** Runs smtp-source; returns the wall time in seconds. */
function smtpSource(port: number, sessions: number, count: number, size: number): number {
  const start = performance.now();
  const r = spawnSync('smtp-source', ['-s', String(sessions), '-m', String(count), '-l', String(size), '-f', 'load@bench.test', '-t', RCPT, `127.0.0.1:${port}`], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`smtp-source failed: ${r.stderr || r.error?.message}`);
  return (performance.now() - start) / 1000;
}

async function waitFor(count: () => Promise<number> | number, target: number): Promise<boolean> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if ((await count()) >= target) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function canConnect(port: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(1);
    });
    socket.on('error', () => resolve(0));
  });
}

interface CarteroNode {
  child: ChildProcess;
  logFile: string;
  /** where the current case's log lines start */
  logOffset: number;
}

function resetStats(node: CarteroNode): void {
  node.logOffset = statSync(node.logFile).size;
}

/** The worst `stats` line (event-loop delay p99, RSS) the node logged since resetStats. */
function readStats(node: CarteroNode): { loopP99Ms: number; rssMb: number } | null {
  const text = readFileSync(node.logFile, 'utf8').slice(node.logOffset);
  let worst = null as { loopP99Ms: number; rssMb: number } | null;
  for (const line of text.split('\n')) {
    if (!line.includes('"stats"')) continue;
    try {
      const rec = JSON.parse(line) as { msg?: string; event_loop_delay_p99_ms?: number; rss_mb?: number };
      if (rec.msg !== 'stats' || rec.event_loop_delay_p99_ms === undefined || rec.rss_mb === undefined) continue;
      worst = { loopP99Ms: Math.max(rec.event_loop_delay_p99_ms, worst?.loopP99Ms ?? 0), rssMb: Math.max(rec.rss_mb, worst?.rssMb ?? 0) };
    } catch {
      // a line cut by the read
    }
  }
  return worst;
}

async function startCartero(dir: string): Promise<CarteroNode> {
  const config = join(dir, 'cartero.yaml');
  await writeFile(
    config,
    [
      'hostname: cartero.bench.test',
      `store: { backend: embedded, path: ${join(dir, 'data')} }`,
      'domains: [example.test]',
      'mynetworks: [127.0.0.0/8]',
      `smtp: { listen: [ { address: 127.0.0.1, port: ${CARTERO_PORT}, max_connections_per_client: 500 } ] }`,
      'imap: { listen: [] }',
      'pop3: { listen: [] }',
      'lmtp: { listen: [] }',
      `log: { level: ${process.env.BENCH_SMTP_LOG ?? 'info'}, format: json, stats_interval: 1 }`,
      '',
    ].join('\n'),
  );
  const store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  await store.directory.addDomain('example.test');
  const account = await store.directory.addAccount({ address: RCPT, passwordHash: null });
  await store.mailboxes.create(account.id, 'INBOX');
  await store.close();
  // The log goes to a file, as Postfix's maillog does: a pipe that the bench reads slowly would stall
  // the node's synchronous log writes and measure the bench, not the node.
  const logFile = join(dir, 'cartero.log');
  const out = openSync(logFile, 'a');
  const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  profile.push(...(process.env.BENCH_SMTP_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''));
  const child = spawn(process.execPath, [...profile, join(import.meta.dirname, '..', 'bin', 'cartero.js'), 'serve', '-c', config], {
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  const node: CarteroNode = { child, logFile, logOffset: 0 };
  const up = await waitFor(() => canConnect(CARTERO_PORT), 1);
  if (!up) throw new Error('cartero did not start listening');
  return node;
}

export async function main(): Promise<void> {
  if (!ensurePostfix()) {
    console.log('# smtp bench needs smtp-source (Debian package postfix); install it as root and rerun');
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'cartero-smtp-bench-'));
  const results: Result[] = [];
  const postfix = WITH_POSTFIX ? startPostfix(join(dir, 'postfix'), POSTFIX_PORT) : null;
  let node: CarteroNode | null = null;
  let store: Store | null = null;
  try {
    node = await startCartero(dir);
    const s = (store = await openStore({ backend: 'embedded', path: join(dir, 'data') }, { migrate: false }));
    const account = (await s.directory.getAccount(RCPT))!;
    const inboxCount = async () => (await s.mailboxes.get(account.id, 'INBOX'))?.messages ?? 0;
    for (const c of CASES) {
      const count = Math.max(10, Math.round(c.count * SCALE));
      for (const sessions of c.sessions) {
        if (ONLY && !ONLY.has(`${c.size / 1024}x${sessions}`)) continue;
        for (const server of ['cartero', 'postfix'] as const) {
          if (server === 'postfix' && !postfix) {
            const none = { acceptedPerSec: Number.NaN, deliveredPerSec: Number.NaN, loopP99Ms: null, rssMb: null, cpuMsPerMsg: null, mainCpuMsPerMsg: null };
            results.push({ server, size: c.size, sessions, count, ...none });
            continue;
          }
          const before = server === 'cartero' ? await inboxCount() : postfix!.delivered();
          resetStats(node);
          const pid = node.child.pid!;
          const cpuBefore = server === 'cartero' ? carteroCpu(pid) : postfixCpu();
          const start = performance.now();
          const seconds = smtpSource(server === 'cartero' ? CARTERO_PORT : POSTFIX_PORT, sessions, count, c.size);
          const done = await waitFor(server === 'cartero' ? async () => (await inboxCount()) - before : () => postfix!.delivered() - before, count);
          const deliveredSeconds = (performance.now() - start) / 1000;
          const cpuAfter = server === 'cartero' ? carteroCpu(pid) : postfixCpu();
          const perMsg = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null ? null : (b - a) / count);
          const cpu = (x: ReturnType<typeof carteroCpu> | number | null) => (typeof x === 'number' ? x : (x?.total ?? null));
          results.push({
            server,
            size: c.size,
            sessions,
            count,
            acceptedPerSec: count / seconds,
            deliveredPerSec: done ? count / deliveredSeconds : Number.NaN,
            loopP99Ms: server === 'cartero' ? (readStats(node)?.loopP99Ms ?? null) : null,
            rssMb: server === 'cartero' ? (readStats(node)?.rssMb ?? null) : null,
            cpuMsPerMsg: perMsg(cpu(cpuBefore), cpu(cpuAfter)),
            mainCpuMsPerMsg: typeof cpuBefore === 'object' && typeof cpuAfter === 'object' ? perMsg(cpuBefore?.main, cpuAfter?.main) : null,
          });
        }
      }
    }
  } finally {
    postfix?.stop();
    await store?.close();
    if (node) {
      const child = node.child;
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    }
    await rm(dir, { recursive: true, force: true });
  }
  printTable(results);
}

function printTable(results: Result[]): void {
  console.log(`\nsmtp benchmark (smtp-source, local delivery into one mailbox, scale ${SCALE})`);
  console.log(
    '| size | sessions | msgs | cartero accepted/s | postfix accepted/s | ratio | cartero delivered/s | postfix delivered/s | loop p99 ms | RSS MB | cartero CPU ms/msg (main) | postfix CPU ms/msg |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  const ms = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  for (let i = 0; i < results.length; i += 2) {
    const c = results[i]!;
    const p = results[i + 1]!;
    console.log(
      `| ${c.size / 1024} KB | ${c.sessions} | ${c.count} | ${c.acceptedPerSec.toFixed(0)} | ${p.acceptedPerSec.toFixed(0)} | ${(c.acceptedPerSec / p.acceptedPerSec).toFixed(2)}x | ${c.deliveredPerSec.toFixed(0)} | ${p.deliveredPerSec.toFixed(0)} | ${c.loopP99Ms?.toFixed(1) ?? '-'} | ${c.rssMb?.toFixed(0) ?? '-'} | ${ms(c.cpuMsPerMsg)} (${ms(c.mainCpuMsPerMsg)}) | ${ms(p.cpuMsPerMsg)} |`,
    );
  }
}
