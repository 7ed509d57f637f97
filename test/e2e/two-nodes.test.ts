/*
 * Two Cartero nodes relaying to each other (issue 5 item 9; DESIGN T1's primary/backup in miniature):
 * two `cartero serve` processes on 127.0.0.1 (node A: accepts from mynetworks, relays b.test by MX) and
 * 127.0.0.2 (node B: b.test's MX, final delivery), each with its own embedded store in a temp dir, both
 * resolving through a loopback DNS authority, A's smtp_client.port pointing at B's SMTP port. Mail sent
 * into A lands in B's mailboxes exactly once; with B killed (SIGKILL) A queues and defers; once B is
 * back, `cartero queue flush` on A delivers the rest, still exactly once.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startAuthority, type AuthorityServer } from '../../src/dns/authority.js';
import { openStore, type Store } from '../../src/store/index.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cartero.js');
const USERS = ['u1@b.test', 'u2@b.test'];
const run = promisify(execFile);

interface Node {
  name: string;
  address: string;
  port: number;
  dir: string;
  config: string;
  log: string;
  child: ChildProcess | null;
}

let dir: string;
let dns: AuthorityServer;
let a: Node;
let b: Node;

async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, address, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function yaml(n: Node, other: Node, extra: string[]): string {
  return [
    `hostname: ${n.name}`,
    `pid_file: ${join(n.dir, 'cartero.pid')}`,
    `store: { backend: embedded, path: ${join(n.dir, 'data')} }`,
    `smtp: { listen: [ { address: ${n.address}, port: ${n.port} } ] }`,
    'imap: { listen: [] }',
    'pop3: { listen: [] }',
    'lmtp: { listen: [] }',
    `dns: { servers: ["${dns.server}"], timeout: 1, retries: 0 }`,
    // the other node's SMTP port stands for port 25; our own address is the source of our connections
    `smtp_client: { port: ${other.port}, tls: none, bind_address: ${n.address} }`,
    // no automatic retry while the test holds B down (a dead site is suspended after 3 failed tries);
    // `cartero queue flush` makes the entries due at once
    'delivery: { minimal_backoff: 30, maximal_backoff: 60, lease_seconds: 5, poll_interval_ms: 100 }',
    'log: { level: info, format: json }',
    ...extra,
    '',
  ].join('\n');
}

async function start(n: Node): Promise<void> {
  const out = openSync(n.log, 'a');
  const child = spawn(process.execPath, [CLI, 'serve', '-c', n.config], { stdio: ['ignore', out, out] });
  closeSync(out);
  n.child = child;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await TestSmtpClient.open(n.port, n.address)).close();
      return;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${n.name} did not start:\n${readFileSync(n.log, 'utf8').slice(-3000)}`);
      await sleep(100);
    }
  }
}

async function stop(n: Node, signal: NodeJS.Signals): Promise<void> {
  const child = n.child;
  n.child = null;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** Sends one message per entry into node A; every one must get 250. Returns the Message-IDs. */
async function sendIntoA(count: number, tag: string): Promise<string[]> {
  const c = await TestSmtpClient.open(a.port, a.address);
  const ids: string[] = [];
  try {
    await c.command('EHLO client.a.test', 250);
    for (let i = 0; i < count; i++) {
      const id = `<${tag}-${i}-${randomBytes(6).toString('hex')}@a.test>`;
      const to = USERS[i % USERS.length]!;
      const r = await c.send('sender@a.test', [to], `From: sender@a.test\r\nTo: ${to}\r\nMessage-ID: ${id}\r\nSubject: ${tag} ${i}\r\n\r\nrelayed by A to B\r\n`);
      assert.equal(r.code, 250, `message ${i}: ${r.code}`);
      ids.push(id);
    }
  } finally {
    c.close();
  }
  return ids;
}

/** Message-IDs in B's mailboxes, one entry per stored copy. */
async function idsIn(store: Store): Promise<string[]> {
  const ids: string[] = [];
  for (const address of USERS) {
    const account = await store.directory.getAccount(address);
    const inbox = account && (await store.mailboxes.get(account.id, 'INBOX'));
    if (!inbox) continue;
    for (const m of await store.messages.list(inbox.id)) {
      const text = (await store.messages.content(inbox.id, m.uid)).toString('latin1');
      const id = /^Message-ID: (.*)$/im.exec(text)?.[1]?.trim();
      if (id) ids.push(id);
    }
  }
  return ids;
}

/** Reads B's store (the node may be running: the embedded store takes concurrent readers). */
async function withB<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ backend: 'embedded', path: join(b.dir, 'data') }, { migrate: false });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}\n--- A ---\n${readFileSync(a.log, 'utf8').slice(-2500)}\n--- B ---\n${readFileSync(b.log, 'utf8').slice(-2500)}`);
    }
    await sleep(100);
  }
}

async function activeInA(): Promise<number> {
  const store = await openStore({ backend: 'embedded', path: join(a.dir, 'data') }, { migrate: false });
  try {
    return (await store.queue.counts(Date.now())).active;
  } finally {
    await store.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cartero-two-nodes-'));
  dns = await startAuthority({
    zone: {
      'a.test': { MX: [{ preference: 10, exchange: 'mx.a.test' }] },
      'mx.a.test': { A: ['127.0.0.1'] },
      'b.test': { MX: [{ preference: 10, exchange: 'mx.b.test' }] },
      'mx.b.test': { A: ['127.0.0.2'] },
    },
  });
  const node = (name: string, address: string, port: number, sub: string): Node => ({
    name, address, port, dir: join(dir, sub), config: join(dir, sub, 'cartero.yaml'), log: join(dir, sub, 'cartero.log'), child: null,
  });
  a = node('mx.a.test', '127.0.0.1', await freePort('127.0.0.1'), 'a');
  b = node('mx.b.test', '127.0.0.2', await freePort('127.0.0.2'), 'b');
  for (const n of [a, b]) await mkdir(n.dir);
  // A: relays for its own networks; b.test goes by MX. B: b.test's mailboxes.
  await writeFile(a.config, yaml(a, b, ['domains: [a.test]', 'mynetworks: [127.0.0.1/32]']));
  await writeFile(b.config, yaml(b, a, ['domains: [b.test]', 'mynetworks: [127.0.0.2/32]']));
  const setup = await openStore({ backend: 'embedded', path: join(b.dir, 'data') });
  await setup.directory.addDomain('b.test');
  for (const u of USERS) {
    const acct = await setup.directory.addAccount({ address: u, passwordHash: null });
    await setup.mailboxes.create(acct.id, 'INBOX');
  }
  await setup.close();
  await Promise.all([start(a), start(b)]);
});

after(async () => {
  await Promise.all([stop(a, 'SIGTERM'), stop(b, 'SIGTERM')]);
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

test('A relays b.test to B by MX; B kills, A queues, B returns, A flushes: every message once', async () => {
  // 1. both up: mail sent into A ends up in B's mailboxes
  const first = await sendIntoA(10, 'up');
  await until(async () => (await withB(idsIn)).length >= first.length, 'the first messages in B');
  await until(async () => (await activeInA()) === 0, "A's queue to drain");
  const aLog = readFileSync(a.log, 'utf8');
  assert.match(aLog, /relay=mx\.b\.test\[127\.0\.0\.2\]:\d+.*status=sent|status=sent.*mx\.b\.test\[127\.0\.0\.2\]/, 'A logged the relay through B by MX');

  // 2. B dies hard; A accepts more and keeps it queued
  await stop(b, 'SIGKILL');
  const second = await sendIntoA(2, 'down');
  await until(async () => /status=deferred/.test(readFileSync(a.log, 'utf8')), 'A to defer while B is down');
  assert.equal(await activeInA(), 2, 'both messages wait in A');

  // 3. B returns; an operator flushes A's queue
  await start(b);
  const { stdout } = await run(process.execPath, [CLI, 'queue', 'flush', '-c', a.config], { timeout: 30_000 });
  assert.match(stdout, /flushed 2 messages/);
  await until(async () => (await activeInA()) === 0, "A's queue to drain after the flush");
  await until(async () => (await withB(idsIn)).length >= first.length + second.length, 'every message in B');

  // 4. exactly once, read from B's store after B stopped
  await stop(b, 'SIGTERM');
  const ids = await withB(idsIn);
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  for (const id of [...first, ...second]) assert.equal(seen.get(id), 1, `${id} is in B exactly once`);
  assert.equal(ids.length, first.length + second.length, 'nothing else arrived');
});
