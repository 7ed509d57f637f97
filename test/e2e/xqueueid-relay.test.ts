/*
 * Exactly once across an SMTP hop between two Cartero processes (docs/xqueueid.md, issue 7). Node A
 * relays through its relayhost to node B over SMTP; between them, a proxy of this test lets B's reply to
 * the end of data through only when told. B has queued the message when it answers 250; we SIGKILL A
 * while that 250 is held, so A never marks the recipients done. A restarts, its lease runs out, it sends
 * the same entry again with the same XQUEUEID and bytes: B must answer 250 with the first queue id and
 * hold the message once. Deterministic: the crash point is the held reply, not a timer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../src/store/index.js';
import { freePort } from '../cli/helpers.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cartero.js');
const A_ADDR = '127.0.4.1';
const B_ADDR = '127.0.4.2';

interface Node {
  name: string;
  dir: string;
  config: string;
  port: number;
  child: ChildProcess | null;
  log: string[];
}

/**
 * Forwards one connection at a time to B. In `hold` mode the first server reply after the client's
 * end-of-data ("\r\n.\r\n") is kept back (and reported), so the client never reads it.
 */
interface HoldingProxy {
  port: number;
  hold: boolean;
  held: Promise<string>;
  close(): Promise<void>;
}

async function holdingProxy(listenAddr: string, target: { host: string; port: number }): Promise<HoldingProxy> {
  let reportHeld: (text: string) => void = () => {};
  const sockets = new Set<Socket>();
  const proxy: HoldingProxy = {
    port: 0,
    hold: true,
    held: new Promise<string>((r) => (reportHeld = r)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
  const srv: Server = createServer((client) => {
    const server = connect(target.port, target.host);
    sockets.add(client).add(server);
    let sentDot = false;
    let withholding = false;
    let tail = '';
    client.on('data', (chunk) => {
      tail = (tail + chunk.toString('latin1')).slice(-5);
      if (tail === '\r\n.\r\n') sentDot = true;
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (withholding) return;
      if (sentDot && proxy.hold) {
        withholding = true;
        reportHeld(chunk.toString('latin1'));
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      server.destroy();
    };
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => srv.listen(0, listenAddr, r));
  proxy.port = (srv.address() as { port: number }).port;
  return proxy;
}

function nodeYaml(n: Node, extra: string): string {
  return [
    `hostname: ${n.name}.example.test`,
    `smtp: { listen: [ { address: ${n.name === 'a' ? A_ADDR : B_ADDR}, port: ${n.port} } ] }`,
    'imap: { listen: [] }',
    'pop3: { listen: [] }',
    'lmtp: { listen: [] }',
    `store: { backend: embedded, path: ${join(n.dir, 'data')} }`,
    `pid_file: ${join(n.dir, 'cartero.pid')}`,
    'mynetworks: [127.0.0.0/8]',
    'dns: { servers: [127.0.0.1:9], timeout: 1, retries: 0 }',
    'delivery: { minimal_backoff: 1, maximal_backoff: 2, lease_seconds: 2, poll_interval_ms: 100 }',
    'log: { level: info, format: json }',
    extra,
  ].join('\n');
}

async function startNode(n: Node): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'serve', '-c', n.config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const take = (chunk: Buffer) => n.log.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  n.child = child;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await TestSmtpClient.open(n.port, n.name === 'a' ? A_ADDR : B_ADDR)).close();
      return;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`node ${n.name} did not start:\n${n.log.join('\n')}`);
      await sleep(100);
    }
  }
}

async function stopNode(n: Node, signal: NodeJS.Signals): Promise<void> {
  const child = n.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  await exited;
  n.child = null;
}

async function until(check: () => boolean | Promise<boolean>, what: string, nodes: Node[], ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; logs:\n${nodes.map((n) => `--- ${n.name}\n${n.log.slice(-40).join('\n')}`).join('\n')}`);
    await sleep(100);
  }
}

const parsed = (n: Node) =>
  n.log.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

let root = '';
let a: Node;
let b: Node;
let proxy: HoldingProxy;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cartero-xqid-'));
  const node = async (name: string): Promise<Node> => ({ name, dir: join(root, name), config: join(root, `${name}.yaml`), port: await freePort(), child: null, log: [] });
  a = await node('a');
  b = await node('b');
  for (const n of [a, b]) await mkdir(n.dir);
  proxy = await holdingProxy('127.0.0.1', { host: B_ADDR, port: b.port });
  await writeFile(b.config, nodeYaml(b, 'domains: [b.example.test]'));
  await writeFile(a.config, nodeYaml(a, `domains: []\nrelayhost: { host: "[127.0.0.1]", port: ${proxy.port}, tls: none }\nsmtp_client: { tls: none, connect_timeout: 2 }`));
  await startNode(b);
  await runCli(['user', 'add', 'bob@b.example.test', '--no-password'], b);
});

after(async () => {
  for (const n of [a, b]) if (n) await stopNode(n, 'SIGKILL');
  await proxy?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function runCli(args: string[], n: Node): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args, '-c', n.config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 0, `cartero ${args.join(' ')}: ${out}`);
}

test('A SIGKILLed after B queued and before A read the 250: B holds the message once', async () => {
  await startNode(a);
  const c = await TestSmtpClient.open(a.port, A_ADDR);
  await c.command('EHLO client.test', 250);
  const body = 'From: carol@client.test\r\nTo: bob@b.example.test\r\nSubject: once over SMTP\r\nMessage-ID: <xqid-once@client.test>\r\n\r\nexactly once, please\r\n';
  assert.equal((await c.send('carol@client.test', ['bob@b.example.test'], body)).code, 250);
  c.close();

  const held = await proxy.held;
  assert.match(held, /^250 2\.0\.0 Ok: queued as (\S+)/, 'B queued the message and answered 250');
  const firstId = /queued as (\S+)/.exec(held)![1]!;
  await stopNode(a, 'SIGKILL');
  proxy.hold = false;

  await startNode(a);
  // A's lease (2 s) runs out, it sends the entry again; B recognises it
  await until(() => parsed(b).some((l) => l.status === 'resent'), 'B to log the resend', [a, b]);
  await until(() => parsed(a).some((l) => l.status === 'sent' && l.recipient === 'bob@b.example.test'), 'A to mark the recipient sent', [a, b]);
  const resent = parsed(b).find((l) => l.status === 'resent')!;
  assert.equal(resent.duplicate_of, firstId);
  assert.deepEqual(resent.recipients, ['bob@b.example.test']);
  assert.match(String(resent.client_queue_id), /^\w/);
  const sent = parsed(a).find((l) => l.status === 'sent' && l.recipient === 'bob@b.example.test')!;
  assert.match(String(sent.reason ?? sent.msg), new RegExp(`queued as ${firstId}`), 'the resend was answered with the first id');

  await stopNode(a, 'SIGTERM');
  await stopNode(b, 'SIGTERM');
  const store = await openStore({ backend: 'embedded', path: join(b.dir, 'data') });
  try {
    const bob = (await store.directory.getAccount('bob@b.example.test'))!;
    const inbox = (await store.mailboxes.get(bob.id, 'INBOX'))!;
    const copies: string[] = [];
    for (const m of await store.messages.list(inbox.id)) {
      const text = (await store.messages.content(inbox.id, m.uid)).toString('latin1');
      if (text.includes('<xqid-once@client.test>')) copies.push(text);
    }
    console.log(`# xqueueid over SMTP: B delivered ${copies.length} cop${copies.length === 1 ? 'y' : 'ies'} after A's crash and resend`);
    assert.equal(copies.length, 1, 'exactly one copy at B');
    assert.equal((await store.queue.list()).length, 0, 'nothing left queued at B');
  } finally {
    await store.close();
  }
});
