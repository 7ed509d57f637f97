/*
 * IMAP/POP3 benchmark (issue 6 item 7): Cartero (embedded store, `cartero serve` in a child process) and,
 * in the same run, a private Dovecot (bench/dovecot.ts), both holding the same generated mailbox and
 * driven by the same raw client (bench/imap-client.ts, bench/pop3-client.ts). Rows: login (both servers
 * hold the same SHA512-CRYPT hash), login+SELECT of a 100,000-message INBOX, SELECT + the first FETCH 1:*
 * of a new session, FETCH 1:* (UID FLAGS), UID SEARCH by SUBJECT and by BODY word, FETCH of
 * 1,000 full bodies, 20 clients of mixed load for 30 s (ops/s), memory per idle connection in IDLE (PSS
 * of the server's processes, 1,000 connections), POP3 RETR of 2,000 x 8 KB. Prints one table with the
 * ratio per row.
 *
 * Both servers are warmed up first (Dovecot builds its index on the first SELECT; the store's pages come
 * into the page cache; Cartero's FETCH and RETR paths get compiled, as in a server that has been up a
 * while). The short rows take 21 samples (a new session's SELECT + first FETCH 7) in turn on each
 * server, so both see the same moments of a shared machine, and report the median; the POP3 rows 5
 * sessions in turn on each server, after one untimed session each; the searches the median of 3.
 * Env: BENCH_IMAP_SCALE (default 1 = the issue's counts; 0.1 while iterating), BENCH_IMAP_DOVECOT=0 skips
 * Dovecot, BENCH_IMAP_ONLY=select,fetch runs only those rows (login select fetch subject body bodies mixed
 * idle pop3), BENCH_IMAP_SAMPLES=N takes N samples of the short rows, BENCH_IMAP_PROF=DIR writes
 * Cartero's CPU profile there, BENCH_IMAP_NODE_FLAGS="--perf-basic-prof" passes flags to Cartero's node
 * (for `perf record -p`), BENCH_IMAP_SHOW=1 prints every sample of the short rows, BENCH_IMAP_KEEP=1
 * keeps the servers' directory (store, Maildir, logs) and prints where it is. Loopback only; every loop
 * is bounded in count and time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeShaCrypt } from '../src/auth/sha-crypt.js';
import { provisionAccount } from '../src/directory/accounts.js';
import { parseStructure, serializeStructure } from '../src/mime/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { createMaildirFolder, ensureDovecot, startDovecot, writeMaildirMessage, type DovecotInstance } from './dovecot.js';
import { RawImap, searchHits } from './imap-client.js';
import { RawPop3 } from './pop3-client.js';

const SCALE = Number(process.env.BENCH_IMAP_SCALE ?? 1);
const scaled = (n: number, min: number) => Math.max(min, Math.round(n * SCALE));
const MESSAGES = scaled(100_000, 100);
const BODIES = scaled(1000, 10);
const IDLE_CONNECTIONS = scaled(1000, 10);
const POP_MESSAGES = scaled(2000, 20);
const POP_SIZE = 8 * 1024;
const MIX_CLIENTS = 20;
const MIX_MS = Math.max(5_000, Math.round(30_000 * Math.min(1, SCALE)));
const IDLE_FOLDER_MESSAGES = 20;
const RUNS = 3;
/**
 * samples of the short rows (LOGIN, SELECT, FETCH): a few tenths of a millisecond to a few milliseconds,
 * where one sample in five is two to five times the rest on either side (the machine, not the server);
 * with 7 the median landed on the slow ones in about one full run of six
 */
const QUICK_RUNS = Number(process.env.BENCH_IMAP_SAMPLES ?? 21);
/** samples of a new session's SELECT + first FETCH 1:*, a row of tens of milliseconds */
const NEW_SESSION_RUNS = Math.ceil(QUICK_RUNS / 3);
/** FETCHes of 1,000 bodies and passes of RETR one at a time over the POP3 messages in the warm-up, on both servers */
const WARM_BODY_FETCHES = 15;
const WARM_RETR_PASSES = 4;
/** sessions per server for the POP3 rows (each: 2,000 RETRs one at a time, then 2,000 pipelined) */
const POP3_SESSIONS = 5;
const PORTS = { cartero: { imap: 21143, pop3: 21110 }, dovecot: { imap: 31143, pop3: 31110 } };
const USER = 'bench@example.test';
const POP_USER = 'pop@example.test';
const PASSWORD = 'bench password';
const SUBJECT_WORD = 'zanzibar';
const BODY_WORD = 'xylophone';
const WITH_DOVECOT = process.env.BENCH_IMAP_DOVECOT !== '0';
const ONLY = process.env.BENCH_IMAP_ONLY ? new Set(process.env.BENCH_IMAP_ONLY.split(',').map((s) => s.trim())) : null;
const PROFILE_DIR = process.env.BENCH_IMAP_PROF;
const wants = (row: string) => !ONLY || ONLY.has(row);

// ------------------------------------------------------------------ messages

/** mulberry32: a small deterministic PRNG, so both servers get the very same messages. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the of and to in is for on that with as was by at from this be are or an it not have which has but were ' +
  'report meeting project budget review schedule team update plan release customer invoice order shipping ' +
  'server network storage backup deploy metrics latency throughput incident postmortem roadmap quarter ' +
  'design draft proposal contract signature approval holiday travel conference agenda minutes summary ' +
  'alpha beta gamma delta north south east west spring summer autumn winter morning evening weekend'
).split(' ');
const NAMES = ['Alice Martin', 'Bob Chen', 'Carla Díaz', 'Dmitri Ivanov', 'Emma Schulz', 'Farid Haddad', 'Grace Okafor', 'Hiro Tanaka'];
const DOMAINS = ['remote.test', 'partner.test', 'lists.example.test', 'mail.vendor.test'];

export interface BenchMessage {
  content: Buffer;
  flags: string[];
  internalDate: number;
}

function words(r: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  return out.join(' ');
}

function addressOf(r: () => number): string {
  const name = NAMES[Math.floor(r() * NAMES.length)]!;
  const local = name.toLowerCase().split(' ')[0]!.normalize('NFD').replace(/[^a-z]/g, '');
  const domain = DOMAINS[Math.floor(r() * DOMAINS.length)]!;
  return /[^\x20-\x7e]/.test(name) ? `=?UTF-8?B?${Buffer.from(name).toString('base64')}?= <${local}@${domain}>` : `"${name}" <${local}@${domain}>`;
}

function paragraph(r: () => number, lines: number, rare: boolean): string {
  const out: string[] = [];
  for (let l = 0; l < lines; l++) {
    let line = words(r, 8 + Math.floor(r() * 4));
    if (rare && l === Math.floor(lines / 2)) line += ` ${BODY_WORD}`;
    out.push(line.charAt(0).toUpperCase() + line.slice(1) + '.');
  }
  return out.join('\r\n');
}

/** Message `i` of the INBOX: a few KB, varied headers, plain or multipart/alternative, 1% with the subject word, 2% with the body word. */
export function benchMessage(i: number): BenchMessage {
  const r = rng(i + 1);
  const date = Date.UTC(2024, 0, 1) + i * 300_000;
  const from = addressOf(r);
  const subjectRare = i % 100 === 7;
  const bodyRare = i % 50 === 3;
  let subject = `${words(r, 3 + Math.floor(r() * 5))}${subjectRare ? ` ${SUBJECT_WORD}` : ''} #${i}`;
  if (i % 20 === 11) subject = `=?UTF-8?Q?R=C3=A9sum=C3=A9_${words(r, 2).replace(/ /g, '_')}?= #${i}`;
  const headers = [
    `Return-Path: <${from.replace(/.*</, '').replace('>', '')}>`,
    `Received: from mx${i % 7}.remote.test (mx${i % 7}.remote.test [192.0.2.${i % 250}])\r\n\tby mail.example.test with ESMTPS id ${i.toString(36)}\r\n\tfor <${USER}>; ${new Date(date).toUTCString()}`,
    `Received: from client.remote.test ([198.51.100.${i % 200}]) by mx${i % 7}.remote.test; ${new Date(date - 2000).toUTCString()}`,
    `Date: ${new Date(date - 5000).toUTCString()}`,
    `From: ${from}`,
    `To: "Bench User" <${USER}>`,
    ...(r() < 0.3 ? [`Cc: ${addressOf(r)}, ${addressOf(r)}`] : []),
    `Subject: ${subject}`,
    `Message-ID: <${i}.${Math.floor(r() * 1e9)}@remote.test>`,
    ...(r() < 0.4 ? [`In-Reply-To: <${i - 1}.1@remote.test>`, `References: <${i - 2}.1@remote.test> <${i - 1}.1@remote.test>`] : []),
    'MIME-Version: 1.0',
    `X-Mailer: BenchMailer ${1 + (i % 5)}.${i % 10}`,
  ];
  const lines = 12 + Math.floor(r() * 50);
  let body: string;
  if (r() < 0.3) {
    const boundary = `b${i.toString(16)}x`;
    const text = paragraph(r, lines, bodyRare);
    headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    body = [
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      text,
      `--${boundary}`,
      'Content-Type: text/html; charset=utf-8',
      '',
      `<html><body><p>${text.replace(/\r\n/g, '</p>\r\n<p>')}</p></body></html>`,
      `--${boundary}--`,
      '',
    ].join('\r\n');
  } else {
    headers.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
    body = `${paragraph(r, lines, bodyRare)}\r\n`;
  }
  const flags: string[] = [];
  if (r() < 0.7) flags.push('\\Seen');
  if (r() < 0.05) flags.push('\\Flagged');
  if (r() < 0.1) flags.push('\\Answered');
  return { content: Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`), flags, internalDate: date };
}

/** POP3 message `i`: exactly 8 KB, as in the issue. */
function popMessage(i: number): Buffer {
  const head = `From: bench@remote.test\r\nTo: ${POP_USER}\r\nSubject: pop bench ${i}\r\nMessage-ID: <pop${i}@remote.test>\r\n\r\n`;
  const line = `${'b'.repeat(76)}\r\n`;
  const body = line.repeat(Math.ceil(POP_SIZE / line.length));
  const whole = Buffer.from(head + body);
  const out = Buffer.from(whole.subarray(0, POP_SIZE));
  out.write('\r\n', POP_SIZE - 2);
  return out;
}

// ------------------------------------------------------------------ filling

/**
 * The one password hash both servers get: SHA512-CRYPT (crypt(3) $6$, 5,000 rounds), Dovecot's usual
 * scheme and what an administrator moving from Dovecot brings along; Cartero verifies it as it is
 * (src/auth/password.ts) and would hash a new password with scrypt.
 */
const PASSWORD_HASH = `{SHA512-CRYPT}${await makeShaCrypt('6', PASSWORD, 'CarteroBench0001')}`;

async function fillCartero(dir: string): Promise<void> {
  const store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  try {
    await store.directory.addDomain('example.test');
    const hash = PASSWORD_HASH;
    const account = await provisionAccount(store, USER, hash);
    const pop = await provisionAccount(store, POP_USER, hash);
    const inbox = (await store.mailboxes.get(account.id, 'INBOX'))!.id;
    const idle = (await store.mailboxes.create(account.id, 'Idle')).id;
    const popInbox = (await store.mailboxes.get(pop.id, 'INBOX'))!.id;
    const append = (mailbox: number, m: BenchMessage) =>
      store.messages.append(mailbox, { content: m.content, flags: m.flags, internalDate: m.internalDate, structure: serializeStructure(parseStructure(m.content)) }, m.internalDate);
    await inOrder(MESSAGES, (i) => append(inbox, benchMessage(i)));
    await inOrder(IDLE_FOLDER_MESSAGES, (i) => append(idle, benchMessage(i)));
    await inOrder(POP_MESSAGES, (i) => append(popInbox, { content: popMessage(i), flags: [], internalDate: Date.UTC(2024, 0, 1) + i * 1000 }));
  } finally {
    await store.close();
  }
}

/**
 * Runs fn(0..count-1) with up to 256 calls in flight, each started in index order; the store hands out
 * UIDs in call order, so message i gets UID i+1 as in Dovecot's Maildir.
 */
async function inOrder(count: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(256, count) }, worker));
}

async function fillDovecot(dovecot: DovecotInstance): Promise<void> {
  const inbox = dovecot.maildir(USER);
  const idle = dovecot.maildir(USER, 'Idle');
  createMaildirFolder(idle);
  await writeFile(join(inbox, 'subscriptions'), 'Idle\n');
  const pop = dovecot.maildir(POP_USER);
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const i = next++;
      const m = benchMessage(i);
      await writeMaildirMessage(inbox, i, m.content, m.flags, m.internalDate);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  for (let i = 0; i < IDLE_FOLDER_MESSAGES; i++) {
    const m = benchMessage(i);
    await writeMaildirMessage(idle, i, m.content, m.flags, m.internalDate);
  }
  for (let i = 0; i < POP_MESSAGES; i++) await writeMaildirMessage(pop, i, popMessage(i), [], Date.UTC(2024, 0, 1) + i * 1000);
  dovecot.fixOwnership();
}

// ------------------------------------------------------------------ servers

interface Server {
  name: 'cartero' | 'dovecot';
  imap: number;
  pop3: number;
  /** pids whose memory is the server's */
  pids(): number[];
  /** before a memory reading: a full GC where there is one; returns the live heap bytes where known */
  settle(): Promise<number | null>;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function startCartero(dir: string): Promise<Server> {
  const config = join(dir, 'cartero.yaml');
  const { imap, pop3 } = PORTS.cartero;
  await writeFile(
    config,
    [
      'hostname: cartero.bench.test',
      `store: { backend: embedded, path: ${join(dir, 'data')} }`,
      'domains: [example.test]',
      'smtp: { listen: [] }',
      `imap: { listen: [ { address: 127.0.0.1, port: ${imap}, max_connections: 5000, max_connections_per_client: 5000 } ], max_connections_per_user: 5000 }`,
      `pop3: { listen: [ { address: 127.0.0.1, port: ${pop3} } ] }`,
      'lmtp: { listen: [] }',
      'log: { level: info, format: json }',
      '',
    ].join('\n'),
  );
  // the log goes to a file, as Dovecot's does
  const logFile = join(dir, 'cartero.log');
  const out = openSync(logFile, 'a');
  const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  profile.push(...(process.env.BENCH_IMAP_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''));
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', ...profile, '--import', 'tsx', join(import.meta.dirname, 'cartero-server.ts'), config], {
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(imap)) || !(await canConnect(pop3))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cartero did not start; see ${join(dir, 'cartero.log')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: 'cartero',
    imap,
    pop3,
    pids: () => [child.pid!],
    settle: async () => {
      const lines = () => readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"memory"'));
      const before = lines().length;
      child.kill('SIGUSR2');
      const deadline = Date.now() + 10_000;
      while (lines().length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const last = lines().at(-1);
      if (!last) return null;
      const m = JSON.parse(last) as { heapUsed: number; external: number };
      return m.heapUsed + m.external;
    },
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The pid and all its descendants (from /proc). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = [root];
  while (walk.length > 0 && out.length < 100_000) {
    const p = walk.pop()!;
    out.push(p);
    walk.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Proportional set size in KB, summed: shared pages (Dovecot's per-session processes) counted once overall. */
function pssKb(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    const file = `/proc/${pid}/smaps_rollup`;
    if (!existsSync(file)) continue;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(file, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * CPU time (user + system, ms) used so far by the server's live processes: Cartero's one process with
 * its threads, Dovecot's whole tree (the session's imap process, auth, master). Clock ticks of 10 ms,
 * so only a sum over many operations means something.
 */
function cpuMs(server: Server): number {
  let ticks = 0;
  for (const pid of server.name === 'cartero' ? server.pids() : processTree(server.pids()[0]!)) {
    try {
      // fields after the ")" that ends the command name: utime and stime are the 12th and 13th
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

/** Server CPU per operation of a row, reported under the table: where the time goes on a shared machine. */
const cpuPerOp = new Map<string, { ms: number; ops: number }>();
function addCpu(server: Server, key: string, ms: number, ops: number): void {
  const k = `${server.name} ${key}`;
  const c = cpuPerOp.get(k) ?? { ms: 0, ops: 0 };
  c.ms += ms;
  c.ops += ops;
  cpuPerOp.set(k, c);
}

// ------------------------------------------------------------------ measurements

type Row = { key: string; label: string; unit: 'ms' | 'ops/s' | 'KB'; higherIsBetter?: boolean; values: Partial<Record<Server['name'], number>>; note?: string };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [performance.now() - start, value];
}

async function login(server: Server): Promise<RawImap> {
  const c = await RawImap.connect(server.imap);
  await c.ok(`LOGIN "${USER}" "${PASSWORD}"`);
  return c;
}

async function warmUp(server: Server): Promise<void> {
  const c = await login(server);
  const sel = await c.ok('SELECT INBOX', { timeoutMs: 600_000 });
  await c.ok('FETCH 1:* (UID FLAGS)', { timeoutMs: 600_000 });
  // likewise for FETCH of bodies, on other messages than the timed row's (which starts mid-mailbox):
  // in a fresh Cartero process the server CPU per FETCH of 1,000 bodies went 80, 50, 60, 30, 40, 40, 30,
  // 40, 30, 10, 20 ms (JIT tiering, young generation growing) before it settled
  for (let i = 0; i < WARM_BODY_FETCHES; i++) await c.ok(`FETCH 1:${BODIES} BODY.PEEK[]`, { timeoutMs: 600_000 });
  await c.ok('SELECT Idle');
  await c.ok('LOGOUT');
  c.close();
  void sel;
  const p = await RawPop3.connect(server.pop3);
  await p.cmd(`USER ${POP_USER}`);
  const ok = await p.cmd(`PASS ${PASSWORD}`);
  if (!ok.status.startsWith('+OK')) throw new Error(`${server.name}: POP3 login failed: ${ok.status}`);
  // a long-running server has run RETR before: the first client after a start must not pay for
  // compiling Cartero's RETR path (Dovecot, C, has nothing to warm); both servers get the same pass
  // (in a fresh Cartero process the server CPU of successive passes of 2,000 RETRs one at a time went
  // 380, 430, 320, 260, 170, 200 ms: V8 was still optimizing functions in the fourth pass)
  for (let pass = 0; pass < WARM_RETR_PASSES; pass++) for (let i = 1; i <= POP_MESSAGES; i++) await p.cmd(`RETR ${i}`, true);
  // and pipelined RETRs, which Cartero answers from read-ahead batches (another path to compile)
  for (let pass = 0; pass < 2; pass++) await retrAllPipelined(p);
  await p.cmd('RSET');
  await p.cmd('QUIT');
  p.close();
}

interface Results {
  [key: string]: number;
}

type Checks = Map<string, Map<string, number>>;

function checker(server: Server, checks: Checks): (what: string, value: number) => void {
  return (what, value) => {
    const m = checks.get(what) ?? new Map<string, number>();
    m.set(server.name, value);
    checks.set(what, m);
  };
}

/**
 * The short timed rows (login, SELECT, FETCH 1:*, FETCH of bodies), sample by sample in turn on each
 * server, so both see the same moments of a shared, noisy machine; the median of QUICK_RUNS per row.
 */
async function measureQuick(servers: readonly Server[], checks: Checks): Promise<Map<Server['name'], Results>> {
  const samples = new Map<Server['name'], Record<string, number[]>>(servers.map((s) => [s.name, {}]));
  const add = (s: Server, key: string, ms: number) => ((samples.get(s.name)![key] ??= []).push(ms));
  // first the rows that open sessions, with no other session of the bench open (an open session on the
  // mailbox changes what a SELECT costs Dovecot)
  for (let r = 0; r < QUICK_RUNS; r++) {
    for (const server of servers) {
      if (wants('login') || wants('select')) {
        const start = performance.now();
        const c = await login(server);
        const loggedIn = performance.now();
        const sel = await c.ok('SELECT INBOX', { keep: true });
        const end = performance.now();
        add(server, 'login', loggedIn - start);
        add(server, 'select', end - loggedIn);
        add(server, 'loginselect', end - start);
        const exists = sel.lines.find((l) => / EXISTS/.test(l));
        if (Number(/\* (\d+) EXISTS/.exec(exists ?? '')?.[1]) !== MESSAGES) throw new Error(`${server.name}: SELECT says ${exists?.trim()}, expected ${MESSAGES}`);
        await c.ok('LOGOUT');
        c.close();
      }
      if (wants('fetch') && r < NEW_SESSION_RUNS) {
        // a new session's first FETCH after SELECT: on Cartero it includes reading the session's view
        const s = await login(server);
        const [ms, reply] = await timed(async () => {
          await s.ok('SELECT INBOX');
          return s.ok('FETCH 1:* (UID FLAGS)');
        });
        if (reply.untagged !== MESSAGES) throw new Error(`${server.name}: FETCH 1:* gave ${reply.untagged} responses`);
        add(server, 'selectfetch', ms);
        await s.ok('LOGOUT');
        s.close();
      }
    }
  }
  // then one session per server for the FETCH rows, its view read before the first timed sample
  if (wants('fetch') || wants('bodies')) {
    const sessions = new Map<Server['name'], { c: RawImap; set: string; bytes: number }>();
    for (const s of servers) {
      const c = await login(s);
      await c.ok('SELECT INBOX');
      await c.ok('FETCH 1:* (UID FLAGS)');
      const from = Math.floor(MESSAGES / 2);
      const set = `${from}:${from + BODIES - 1}`;
      const sizes = await c.ok(`FETCH ${set} (RFC822.SIZE)`, { keep: true });
      sessions.set(s.name, { c, set, bytes: sizes.lines.reduce((n, l) => n + Number(/RFC822\.SIZE (\d+)/.exec(l)?.[1] ?? 0), 0) });
    }
    for (let r = 0; r < QUICK_RUNS; r++) {
      for (const server of servers) {
        const { c, set, bytes } = sessions.get(server.name)!;
        if (wants('fetch')) {
          const cpu = cpuMs(server);
          const [ms, reply] = await timed(() => c.ok('FETCH 1:* (UID FLAGS)'));
          addCpu(server, 'fetch', cpuMs(server) - cpu, 1);
          if (reply.untagged !== MESSAGES) throw new Error(`${server.name}: FETCH 1:* gave ${reply.untagged} responses`);
          add(server, 'fetch', ms);
        }
        if (wants('bodies')) {
          const cpu = cpuMs(server);
          const [ms, reply] = await timed(() => c.ok(`FETCH ${set} BODY.PEEK[]`));
          addCpu(server, 'bodies', cpuMs(server) - cpu, 1);
          if (reply.untagged !== BODIES || reply.literalBytes !== bytes) {
            throw new Error(`${server.name}: FETCH of ${BODIES} bodies gave ${reply.untagged} responses, ${reply.literalBytes} bytes; expected ${bytes}`);
          }
          add(server, 'bodies', ms);
          checker(server, checks)('bodies bytes', bytes);
        }
      }
    }
    for (const { c } of sessions.values()) {
      await c.ok('LOGOUT');
      c.close();
    }
  }
  const out = new Map<Server['name'], Results>();
  if (process.env.BENCH_IMAP_SHOW) {
    for (const [name, rows] of samples) for (const [k, v] of Object.entries(rows)) console.log(`# ${name} ${k}: ${v.map((x) => x.toFixed(1)).join(' ')}`);
  }
  for (const [name, rows] of samples) out.set(name, Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)])));
  return out;
}

/** The long rows, one server at a time: searches, mixed load, IDLE memory. */
async function measure(server: Server, checks: Checks): Promise<Results> {
  const out: Results = {};
  const check = checker(server, checks);
  const c = await login(server);
  await c.ok('SELECT INBOX');
  for (const [key, query] of [
    ['subject', `UID SEARCH SUBJECT ${SUBJECT_WORD}`],
    ['body', `UID SEARCH BODY ${BODY_WORD}`],
  ] as const) {
    if (!wants(key)) continue;
    const runs: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const [ms, reply] = await timed(() => c.ok(query, { keep: true, timeoutMs: 600_000 }));
      runs.push(ms);
      check(`${key} hits`, searchHits(reply.lines).length);
    }
    out[key] = median(runs);
  }
  await c.ok('LOGOUT');
  c.close();
  if (wants('mixed')) out.mixed = await mixedLoad(server);
  if (wants('idle')) Object.assign(out, await idleMemory(server));
  return out;
}

/** 20 clients on the INBOX for MIX_MS: fetch headers, fetch a body, store flags, append, expunge what they appended, re-select. */
async function mixedLoad(server: Server): Promise<number> {
  const deadline = performance.now() + MIX_MS;
  const half = Math.floor(MESSAGES / 2);
  const client = async (k: number): Promise<number> => {
    const r = rng(1000 + k);
    const c = await login(server);
    await c.ok('SELECT INBOX');
    const mine: number[] = [];
    let ops = 0;
    let n = 0;
    while (performance.now() < deadline && ops < 10_000_000) {
      const x = r();
      const seq = 1 + Math.floor(r() * (half - 10));
      if (x < 0.35) await c.ok(`FETCH ${seq}:${seq + 9} (UID FLAGS RFC822.SIZE ENVELOPE)`);
      else if (x < 0.5) await c.ok(`FETCH ${seq} BODY.PEEK[]`);
      else if (x < 0.75) await c.ok(`STORE ${seq} ${n++ % 2 === 0 ? '+' : '-'}FLAGS (\\Flagged)`);
      else if (x < 0.86) {
        const reply = await c.append('INBOX', ['\\Seen'], benchMessage(MESSAGES + k * 100_000 + n++).content);
        const uid = /APPENDUID \d+ (\d+)/.exec(reply.text)?.[1];
        if (uid) mine.push(Number(uid));
      } else if (x < 0.97) {
        const uid = mine.shift();
        if (uid === undefined) continue;
        await c.ok(`UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
        await c.ok(`UID EXPUNGE ${uid}`);
      } else await c.ok('SELECT INBOX');
      ops++;
    }
    // leave the mailbox as it was for the other server's turn and later rows
    if (mine.length > 0) {
      await c.ok(`UID STORE ${mine.join(',')} +FLAGS.SILENT (\\Deleted)`);
      await c.ok(`UID EXPUNGE ${mine.join(',')}`);
    }
    await c.ok('LOGOUT');
    c.close();
    return ops;
  };
  const start = performance.now();
  const counts = await Promise.all(Array.from({ length: MIX_CLIENTS }, (_, k) => client(k)));
  const seconds = (performance.now() - start) / 1000;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

/**
 * KB of server memory per connection logged in, with a small mailbox selected, in IDLE: the growth of
 * the server's PSS (after a full GC on Cartero), and for Cartero also of its live JS heap + external
 * memory (what the sessions hold, whatever the allocator keeps).
 */
async function idleMemory(server: Server): Promise<{ idle: number; idleheap?: number }> {
  const memory = async () => {
    const live = await server.settle();
    return { pss: pssKb(server.name === 'cartero' ? server.pids() : processTree(server.pids()[0]!)), live };
  };
  await new Promise((r) => setTimeout(r, 1000));
  const before = await memory();
  const conns = await openIdle(server, IDLE_CONNECTIONS);
  await new Promise((r) => setTimeout(r, 2000));
  const after = await memory();
  await closeAll(conns);
  const idle = (after.pss - before.pss) / IDLE_CONNECTIONS;
  if (after.live === null || before.live === null) return { idle };
  return { idle, idleheap: (after.live - before.live) / 1024 / IDLE_CONNECTIONS };
}

type IdleConnection = { c: RawImap; done(): Promise<unknown> };

async function openIdle(server: Server, count: number): Promise<IdleConnection[]> {
  const conns: IdleConnection[] = [];
  let next = 0;
  const opener = async () => {
    while (next < count) {
      next++;
      const c = await login(server);
      await c.ok('SELECT Idle');
      const idle = await c.idle();
      conns.push({ c, done: idle.done });
    }
  };
  await Promise.all(Array.from({ length: 16 }, opener));
  return conns;
}

async function closeAll(conns: IdleConnection[]): Promise<void> {
  for (let i = 0; i < conns.length; i += 100) {
    await Promise.all(
      conns.slice(i, i + 100).map(async ({ c, done }) => {
        await done();
        await c.ok('LOGOUT').catch(() => undefined);
        c.close();
      }),
    );
  }
}

/**
 * The POP3 rows, after every server's long rows: POP3_SESSIONS sessions of pop3RetrOnce taken in turn on
 * each server, as the short rows are, so both see the same moments of the machine (one pass of 2,000
 * RETRs one at a time took 90 or 185 ms on the same server with the same CPU, minutes apart); the median
 * per row. Each server first gets one untimed pass: the rows before (mixed load, 1,000 IDLE sessions) ran
 * other code, and in a Cartero process the first pass after them cost 1.5–2× the CPU of the next ones.
 */
async function measurePop3(servers: readonly Server[]): Promise<Map<Server['name'], Results>> {
  const runs = new Map<Server['name'], Results[]>(servers.map((s) => [s.name, []]));
  for (const server of servers) await pop3RetrOnce(server, false);
  for (let i = 0; i < POP3_SESSIONS; i++) for (const server of servers) runs.get(server.name)!.push(await pop3RetrOnce(server));
  const out = new Map<Server['name'], Results>();
  for (const [name, rs] of runs) out.set(name, { pop3seq: median(rs.map((r) => r.pop3seq!)), pop3pipe: median(rs.map((r) => r.pop3pipe!)) });
  return out;
}

/** RETR of every POP3 bench message, all sent before the first answer is read. */
function retrAllPipelined(p: RawPop3): Promise<{ status: string; bytes: number }[]> {
  return Promise.all(p.pipeline(Array.from({ length: POP_MESSAGES }, (_, i) => `RETR ${i + 1}`), true));
}

async function pop3RetrOnce(server: Server, record = true): Promise<Results> {
  const p = await RawPop3.connect(server.pop3);
  await p.cmd(`USER ${POP_USER}`);
  const ok = await p.cmd(`PASS ${PASSWORD}`);
  if (!ok.status.startsWith('+OK')) throw new Error(`${server.name}: POP3 login failed: ${ok.status}`);
  let bytes = 0;
  let cpu = cpuMs(server);
  const seqStart = performance.now();
  for (let i = 1; i <= POP_MESSAGES; i++) {
    const r = await p.cmd(`RETR ${i}`, true);
    if (!r.status.startsWith('+OK')) throw new Error(`${server.name}: RETR ${i}: ${r.status}`);
    bytes += r.bytes;
  }
  const seq = performance.now() - seqStart;
  if (record) addCpu(server, 'pop3seq', cpuMs(server) - cpu, 1);
  cpu = cpuMs(server);
  const pipeStart = performance.now();
  const replies = await retrAllPipelined(p);
  const pipe = performance.now() - pipeStart;
  if (record) addCpu(server, 'pop3pipe', cpuMs(server) - cpu, 1);
  await p.cmd('RSET');
  await p.cmd('QUIT');
  p.close();
  // dot-stuffed bodies: no line of these messages starts with a dot, so the bytes are the message's
  if (bytes !== POP_MESSAGES * POP_SIZE || replies.some((r) => r.bytes !== POP_SIZE)) throw new Error(`${server.name}: RETR returned ${bytes} bytes, expected ${POP_MESSAGES * POP_SIZE}`);
  return { pop3seq: seq, pop3pipe: pipe };
}

// ------------------------------------------------------------------ the run

const ROWS: Omit<Row, 'values'>[] = [
  { key: 'login', label: 'connect + LOGIN (both: the same SHA512-CRYPT hash)', unit: 'ms' },
  { key: 'loginselect', label: `connect + LOGIN + SELECT INBOX (${MESSAGES.toLocaleString('en')} messages)`, unit: 'ms' },
  { key: 'select', label: `SELECT INBOX alone (${MESSAGES.toLocaleString('en')} messages)`, unit: 'ms' },
  { key: 'selectfetch', label: 'SELECT INBOX + first FETCH 1:* (UID FLAGS), new session', unit: 'ms' },
  { key: 'fetch', label: 'FETCH 1:* (UID FLAGS)', unit: 'ms' },
  { key: 'subject', label: `UID SEARCH SUBJECT ${SUBJECT_WORD} (1% match)`, unit: 'ms' },
  { key: 'body', label: `UID SEARCH BODY ${BODY_WORD} (2% match)`, unit: 'ms' },
  { key: 'bodies', label: `FETCH ${BODIES.toLocaleString('en')} full bodies (BODY.PEEK[])`, unit: 'ms' },
  { key: 'mixed', label: `mixed load, ${MIX_CLIENTS} clients, ${MIX_MS / 1000} s`, unit: 'ops/s', higherIsBetter: true },
  { key: 'idle', label: `memory per connection, ${IDLE_CONNECTIONS.toLocaleString('en')} in IDLE (PSS growth)`, unit: 'KB' },
  { key: 'idleheap', label: `… of which live JS heap + external (Cartero, after GC)`, unit: 'KB' },
  { key: 'pop3seq', label: `POP3 RETR ${POP_MESSAGES.toLocaleString('en')} x 8 KB, one at a time`, unit: 'ms' },
  { key: 'pop3pipe', label: `POP3 RETR ${POP_MESSAGES.toLocaleString('en')} x 8 KB, pipelined`, unit: 'ms' },
];

function fmt(v: number | undefined, unit: Row['unit']): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (unit === 'ops/s') return `${v.toFixed(0)} ops/s`;
  if (unit === 'KB') return `${v.toFixed(1)} KB`;
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}

export async function main(): Promise<void> {
  const withDovecot = WITH_DOVECOT && ensureDovecot();
  if (WITH_DOVECOT && !withDovecot) console.log('# Dovecot (dovecot-imapd, dovecot-pop3d) is not installed and cannot be: Cartero only');
  const dir = await mkdtemp(join(tmpdir(), 'cartero-imap-bench-'));
  const servers: Server[] = [];
  const results = new Map<Server['name'], Results>();
  const checks = new Map<string, Map<string, number>>();
  try {
    const fillStart = performance.now();
    await fillCartero(dir);
    console.log(`# Cartero store filled: ${MESSAGES} + ${POP_MESSAGES} messages in ${((performance.now() - fillStart) / 1000).toFixed(1)} s (store API)`);
    servers.push(await startCartero(dir));
    if (withDovecot) {
      const fill = performance.now();
      const dovecot = await startDovecot(join(dir, 'dovecot'), {
        imapPort: PORTS.dovecot.imap,
        pop3Port: PORTS.dovecot.pop3,
        users: [USER, POP_USER].map((name) => ({ name, hash: PASSWORD_HASH })),
      });
      servers.push({ name: 'dovecot', imap: dovecot.imapPort, pop3: dovecot.pop3Port, pids: () => [dovecot.pid], settle: async () => null, stop: dovecot.stop });
      await fillDovecot(dovecot);
      console.log(`# Dovecot Maildir filled in ${((performance.now() - fill) / 1000).toFixed(1)} s (files)`);
    }
    for (const s of servers) {
      const [ms] = await timed(() => warmUp(s));
      console.log(`# ${s.name}: warm-up (first SELECT, FETCH 1:*, bodies, POP3 RETR) ${(ms / 1000).toFixed(1)} s`);
    }
    const quick = await measureQuick(servers, checks);
    console.log('# short rows done (samples alternating between the servers)');
    for (const s of servers) {
      results.set(s.name, { ...quick.get(s.name), ...(await measure(s, checks)) });
      console.log(`# ${s.name} done`);
    }
    if (wants('pop3')) {
      for (const [name, r] of await measurePop3(servers)) Object.assign(results.get(name)!, r);
      console.log('# POP3 rows done (sessions alternating between the servers)');
    }
  } finally {
    for (const s of servers) await s.stop().catch((err: unknown) => console.error(`# stopping ${s.name}: ${String(err)}`));
    if (process.env.BENCH_IMAP_KEEP) console.log(`# kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
  for (const [what, by] of checks) {
    const values = [...by.values()];
    if (values.some((v) => v !== values[0])) console.log(`# WARNING: ${what} differ: ${[...by].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    else console.log(`# ${what}: ${values[0]} on both`);
  }
  printTable(results);
}

function printTable(results: Map<Server['name'], Results>): void {
  const c = results.get('cartero') ?? {};
  const d = results.get('dovecot') ?? {};
  console.log('');
  console.log(`| IMAP/POP3, scale ${SCALE} | Cartero | Dovecot ${results.has('dovecot') ? '2.3' : '(not run)'} | ratio (≤ 1: Cartero at or better) |`);
  console.log('|---|---|---|---|');
  for (const row of ROWS) {
    const cv = c[row.key];
    const dv = d[row.key];
    if (cv === undefined && dv === undefined) continue;
    let ratio = '–';
    if (cv !== undefined && dv !== undefined && cv > 0 && dv > 0) ratio = (row.higherIsBetter ? dv / cv : cv / dv).toFixed(2);
    console.log(`| ${row.label} | ${fmt(cv, row.unit)} | ${fmt(dv, row.unit)} | ${ratio} |`);
  }
  const cpuRows = ROWS.filter((row) => [...cpuPerOp.keys()].some((k) => k.endsWith(` ${row.key}`)));
  if (cpuRows.length > 0) console.log('');
  for (const row of cpuRows) {
    const per = (name: string) => {
      const c = cpuPerOp.get(`${name} ${row.key}`);
      return c ? `${name} ${(c.ms / c.ops).toFixed(1)} ms` : null;
    };
    console.log(`# server CPU per operation, ${row.label}: ${[per('cartero'), per('dovecot')].filter((x) => x !== null).join(', ')}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
