/*
 * Relay benchmark (issue 5 item 10): Postfix's smtp-source sends 10,000 x 4 KB messages at 10 and 50
 * sessions into a Cartero frontend (`cartero serve` child process, embedded store in a temp dir,
 * mynetworks 127.0.0.0/8) that relays them, and, in the same run, into a private Postfix set up the same
 * way (bench/postfix.ts relay mode). Two next hops, both measured at the far end:
 *   sink: everything to Postfix's smtp-sink through `relayhost` (its counters give messages and
 *         connections: `mesg=` and `sess=`, plus sessions still open from `ss`);
 *   lmtp: a transport entry sends the domain by LMTP to a Cartero backend (a second `cartero serve`
 *         with an LMTP listener), the same backend for both senders; counted in its mailbox.
 * Prints accepted msg/s (smtp-source's wall time), end-to-end msg/s (until the far end holds every
 * message), connections opened to the sink, the frontend's event-loop delay p99, RSS and CPU per
 * message, and the Cartero/Postfix ratios. BENCH_RELAY_SCALE=0.1 for a smaller run;
 * BENCH_RELAY_KINDS=sink|lmtp, BENCH_RELAY_SESSIONS=10, BENCH_RELAY_POSTFIX=0 (skip Postfix) and
 * BENCH_RELAY_PROF=DIR (the frontend's --cpu-prof, in DIR/frontend: one file per thread) and
 * BENCH_RELAY_CONCURRENCY=N (the frontend's delivery.concurrency) while iterating. Loopback only; every wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../src/store/index.js';
import { ensurePostfix, startPostfix, type PostfixInstance } from './postfix.js';

const SCALE = Number(process.env.BENCH_RELAY_SCALE ?? 1);
const COUNT = Math.max(10, Math.round(10_000 * SCALE));
const SIZE = 4096;
const SESSIONS = (process.env.BENCH_RELAY_SESSIONS ?? '10,50').split(',').map(Number).filter((n) => n > 0);
const KINDS = (process.env.BENCH_RELAY_KINDS ?? 'sink,lmtp').split(',').filter((k): k is Kind => k === 'sink' || k === 'lmtp');
const WITH_POSTFIX = process.env.BENCH_RELAY_POSTFIX !== '0';
const PROFILE_DIR = process.env.BENCH_RELAY_PROF;
/** the frontend's delivery.concurrency (default: the configuration's default) */
const FRONT_CONCURRENCY = Number(process.env.BENCH_RELAY_CONCURRENCY ?? 0) || null;
const DELIVERY_TIMEOUT_MS = 300_000;
const SINK_DOMAIN = 'relay.test';
const LMTP_DOMAIN = 'lmtp.test';
const LMTP_RCPT = `bench@${LMTP_DOMAIN}`;
/** Linux's USER_HZ: /proc stat times are in these ticks */
const TICK_MS = 10;

type Kind = 'sink' | 'lmtp';
type Server = 'cartero' | 'postfix';

interface Result {
  kind: Kind;
  server: Server;
  sessions: number;
  count: number;
  acceptedPerSec: number;
  endToEndPerSec: number;
  /** sink only */
  connections: number | null;
  loopP99Ms: number | null;
  rssMb: number | null;
  /** Cartero: frontend (+ backend for lmtp) CPU per message */
  cpuMsPerMsg: number | null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function waitFor(check: () => Promise<boolean> | boolean, ms: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

/** smtp-source as a child process (asynchronous: the bench keeps polling meanwhile); wall seconds. */
function smtpSource(port: number, sessions: number, count: number, to: string): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('smtp-source', ['-s', String(sessions), '-m', String(count), '-l', String(SIZE), '-f', 'load@bench.test', '-t', to, `127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve((performance.now() - start) / 1000);
      else reject(new Error(`smtp-source failed (${code}): ${err.trim()}`));
    });
  });
}

// --- the sink: Postfix's smtp-sink, its running counters in a file ---

interface Sink {
  port: number;
  counters(): { sessions: number; messages: number };
  /** established connections to the sink right now */
  open(): number;
  stop(): void;
}

async function startSink(dir: string): Promise<Sink> {
  const port = await freePort();
  const file = join(dir, 'sink.out');
  const out = openSync(file, 'a');
  // -c: counters on stdout; -u: drop root; backlog 1024; up to 1024 sessions at once
  const child = spawn('smtp-sink', ['-c', '-u', 'nobody', '-m', '1024', `127.0.0.1:${port}`, '1024'], { stdio: ['ignore', out, out] });
  closeSync(out);
  if (!(await waitFor(() => canConnect(port), 10_000))) throw new Error('smtp-sink did not start');
  return {
    port,
    counters() {
      // the file is a run of "sess=N quit=N mesg=N\r" updates: the last complete one is the current state
      const size = statSync(file).size;
      const fd = openSync(file, 'r');
      const buf = Buffer.alloc(Math.min(size, 400));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      closeSync(fd);
      const all = [...buf.toString('latin1').matchAll(/sess=(\d+) quit=\d+ mesg=(\d+)/g)];
      const last = all.at(-1);
      return last ? { sessions: Number(last[1]), messages: Number(last[2]) } : { sessions: 0, messages: 0 };
    },
    open() {
      const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
      return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
    },
    stop: () => void child.kill('SIGTERM'),
  };
}

// --- Cartero nodes ---

interface CarteroNode {
  child: ChildProcess;
  logFile: string;
  logOffset: number;
}

async function startCartero(dir: string, name: string, yaml: string[], port: number, profile: boolean): Promise<CarteroNode> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'cartero.yaml');
  await writeFile(config, [...yaml, `pid_file: ${join(dir, 'cartero.pid')}`, 'log: { level: info, format: json, stats_interval: 1 }', ''].join('\n'));
  // the log goes to a file, as Postfix's maillog does (a pipe read slowly would stall the node)
  const logFile = join(dir, 'cartero.log');
  const out = openSync(logFile, 'a');
  const flags = profile && PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : [];
  const child = spawn(process.execPath, [...flags, join(import.meta.dirname, '..', 'bin', 'cartero.js'), 'serve', '-c', config], { stdio: ['ignore', out, 'inherit'] });
  closeSync(out);
  if (!(await waitFor(() => canConnect(port), 30_000, 100))) throw new Error(`cartero ${name} did not start listening; see ${logFile}`);
  return { child, logFile, logOffset: 0 };
}

async function stopCartero(node: CarteroNode | null): Promise<void> {
  if (!node || node.child.exitCode !== null) return;
  const exited = new Promise((r) => node.child.once('exit', r));
  node.child.kill('SIGTERM');
  await exited;
}

/** The worst `stats` line (event-loop delay p99, RSS) the node logged since `logOffset`. */
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

function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return null;
  }
}

async function setupBackendStore(path: string): Promise<void> {
  const store = await openStore({ backend: 'embedded', path });
  await store.directory.addDomain(LMTP_DOMAIN);
  const account = await store.directory.addAccount({ address: LMTP_RCPT, passwordHash: null });
  await store.mailboxes.create(account.id, 'INBOX');
  await store.close();
}

export async function main(): Promise<void> {
  if (!ensurePostfix() || spawnSync('smtp-sink', ['-h'], { stdio: 'ignore' }).error) {
    console.log('# relay bench needs smtp-source and smtp-sink (Debian package postfix); install it as root and rerun');
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'cartero-relay-bench-'));
  const results: Result[] = [];
  let sink: Sink | null = null;
  let postfix: PostfixInstance | null = null;
  let front: CarteroNode | null = null;
  let back: CarteroNode | null = null;
  let backStore: Store | null = null;
  try {
    sink = await startSink(dir);
    const [frontPort, backPort, postfixPort] = [await freePort(), await freePort(), await freePort()];
    const lmtpNext = `127.0.0.1:${backPort}`;
    if (KINDS.includes('lmtp')) {
      await setupBackendStore(join(dir, 'back', 'data'));
      back = await startCartero(join(dir, 'back'), 'backend', [
        'hostname: backend.bench.test',
        `store: { backend: embedded, path: ${join(dir, 'back', 'data')} }`,
        `domains: [${LMTP_DOMAIN}]`,
        'smtp: { listen: [] }',
        'imap: { listen: [] }',
        'pop3: { listen: [] }',
        `lmtp: { listen: [ { address: 127.0.0.1, port: ${backPort}, max_connections_per_client: 500 } ] }`,
      ], backPort, false);
      backStore = await openStore({ backend: 'embedded', path: join(dir, 'back', 'data') }, { migrate: false });
    }
    front = await startCartero(join(dir, 'front'), 'frontend', [
      'hostname: cartero.bench.test',
      `store: { backend: embedded, path: ${join(dir, 'front', 'data')} }`,
      'domains: []',
      'mynetworks: [127.0.0.0/8]',
      `smtp: { listen: [ { address: 127.0.0.1, port: ${frontPort}, max_connections_per_client: 500 } ] }`,
      'imap: { listen: [] }',
      'pop3: { listen: [] }',
      'lmtp: { listen: [] }',
      `relayhost: { host: "[127.0.0.1]", port: ${sink.port}, tls: none }`,
      `transports: { ${LMTP_DOMAIN}: "lmtp:[127.0.0.1]:${backPort}" }`,
      'smtp_client: { tls: none }',
      ...(FRONT_CONCURRENCY ? [`delivery: { concurrency: ${FRONT_CONCURRENCY} }`] : []),
    ], frontPort, true);
    if (WITH_POSTFIX) {
      postfix = startPostfix(join(dir, 'postfix'), postfixPort, {
        relayhost: `[127.0.0.1]:${sink.port}`,
        transports: { [LMTP_DOMAIN]: `lmtp:inet:${lmtpNext}` },
      });
    }
    const s = sink;
    const bs = backStore;
    const account = bs ? await bs.directory.getAccount(LMTP_RCPT) : null;
    const inboxCount = async () => (bs && account ? ((await bs.mailboxes.get(account.id, 'INBOX'))?.messages ?? 0) : 0);
    for (const kind of KINDS) {
      for (const sessions of SESSIONS) {
        for (const server of ['cartero', 'postfix'] as const) {
          if (server === 'postfix' && !postfix) {
            results.push({ kind, server, sessions, count: COUNT, acceptedPerSec: NaN, endToEndPerSec: NaN, connections: null, loopP99Ms: null, rssMb: null, cpuMsPerMsg: null });
            continue;
          }
          // connections left over from the previous case close first, so each case counts its own
          if (kind === 'sink') await waitFor(() => s.open() === 0, 15_000, 200);
          const delivered = kind === 'sink' ? async () => s.counters().messages : inboxCount;
          const before = { delivered: await delivered(), sessions: s.counters().sessions };
          front.logOffset = statSync(front.logFile).size;
          const cpuBefore = [cpuMs(front.child.pid), kind === 'lmtp' ? cpuMs(back?.child.pid) : 0];
          const start = performance.now();
          const port = server === 'cartero' ? frontPort : postfixPort;
          const seconds = await smtpSource(port, sessions, COUNT, kind === 'sink' ? `bench@${SINK_DOMAIN}` : LMTP_RCPT);
          const done = await waitFor(async () => (await delivered()) - before.delivered >= COUNT, DELIVERY_TIMEOUT_MS, 20);
          const endSeconds = (performance.now() - start) / 1000;
          const cpuAfter = [cpuMs(front.child.pid), kind === 'lmtp' ? cpuMs(back?.child.pid) : 0];
          const connections = kind === 'sink' ? s.counters().sessions - before.sessions + s.open() : null;
          const stats = server === 'cartero' ? readStats(front) : null;
          const cpu = cpuBefore.every((x) => x !== null) && cpuAfter.every((x) => x !== null)
            ? (cpuAfter[0]! + cpuAfter[1]! - cpuBefore[0]! - cpuBefore[1]!) / COUNT
            : null;
          results.push({
            kind,
            server,
            sessions,
            count: COUNT,
            acceptedPerSec: COUNT / seconds,
            endToEndPerSec: done ? COUNT / endSeconds : NaN,
            connections,
            loopP99Ms: stats?.loopP99Ms ?? null,
            rssMb: stats?.rssMb ?? null,
            cpuMsPerMsg: server === 'cartero' ? cpu : null,
          });
          if (!done) console.error(`# ${server} ${kind} x${sessions}: only ${(await delivered()) - before.delivered} of ${COUNT} arrived in ${DELIVERY_TIMEOUT_MS / 1000}s`);
        }
      }
    }
  } finally {
    postfix?.stop();
    await Promise.all([stopCartero(front), stopCartero(back)]);
    await backStore?.close();
    sink?.stop();
    await rm(dir, { recursive: true, force: true });
  }
  printTable(results);
}

function printTable(results: Result[]): void {
  const n = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const o = (x: number | null, d = 0) => (x === null ? '-' : x.toFixed(d));
  console.log(`\nrelay benchmark (smtp-source, ${SIZE / 1024} KB, ${COUNT} messages per case, scale ${SCALE})`);
  console.log('| next hop | sessions | cartero accepted/s | postfix accepted/s | ratio | cartero end-to-end/s | postfix end-to-end/s | ratio | conns to sink (cartero / postfix) | loop p99 ms | RSS MB | cartero CPU ms/msg |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (let i = 0; i < results.length; i += 2) {
    const c = results[i]!;
    const p = results[i + 1]!;
    const hop = c.kind === 'sink' ? 'smtp-sink (relayhost)' : 'LMTP to a Cartero backend';
    console.log(
      `| ${hop} | ${c.sessions} | ${n(c.acceptedPerSec)} | ${n(p.acceptedPerSec)} | ${n(c.acceptedPerSec / p.acceptedPerSec, 2)}x | ${n(c.endToEndPerSec)} | ${n(p.endToEndPerSec)} | ${n(c.endToEndPerSec / p.endToEndPerSec, 2)}x | ${o(c.connections)} / ${o(p.connections)} | ${o(c.loopP99Ms, 1)} | ${o(c.rssMb)} | ${o(c.cpuMsPerMsg, 2)} |`,
    );
  }
}
