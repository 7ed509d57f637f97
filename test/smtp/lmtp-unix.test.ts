/*
 * LMTP on a Unix-domain socket (RFC 2033 §5 leaves the transport open; Cyrus and Dovecot listen on one
 * for the local MTA): the listener's file handling (mode, stale socket replaced, live socket and
 * non-socket files refused, file removed at close), its limits (the listener limit applies, the
 * per-client one does not: every Unix client has the same no-address), and real deliveries through it
 * from the delivery agent's `lmtp:unix:/path` destination and from Python's smtplib.LMTP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startMailServices } from '../../src/cli/serve-mail.js';
import { createSmtpAgent } from '../../src/delivery/smtp/agent.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import type { Resolver } from '../../src/dns/types.js';
import { closeWith, ListenError, startListeners, UNIX_CLIENT, type ConnectionHandler, type ConnectionInfo, type Listeners } from '../../src/net/listeners.js';
import { captureLogger, openTestStore, type TestStore } from '../../src/queue/testing.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import { job } from '../delivery/helpers.js';
import { testConfig } from './env.js';

const run = promisify(execFile);
const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'no DNS in this test' }) };

let dir: string;
let ts: TestStore;
let server: SmtpServer;
let listeners: Listeners;
let socketPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cartero-lmtp-unix-'));
  socketPath = join(dir, 'lmtp.sock');
  ts = await openTestStore('cartero-lmtp-unix-store-');
  await ts.store.directory.addDomain('example.test');
  for (const a of ['alice', 'bob']) await provisionAccount(ts.store, `${a}@example.test`, null);
  const config = testConfig();
  const { logger } = captureLogger();
  const mail = await startMailServices({ config, store: ts.store, logger });
  server = createSmtpServer({ config, services: mail.lmtpServices, logger, protocol: 'lmtp' });
  listeners = await startListeners([{ proto: 'lmtp', path: socketPath, handler: server.handler({ key: 'lmtp.listen[0]', submission: false }) }]);
});

after(async () => {
  await Promise.all([server.drain(1000), listeners.close(1000)]);
  await ts.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function inbox(address: string): Promise<string[]> {
  const account = (await ts.store.directory.getAccount(address))!;
  const box = (await ts.store.mailboxes.get(account.id, 'INBOX'))!;
  const out: string[] = [];
  for (const m of await ts.store.messages.list(box.id)) out.push((await ts.store.messages.content(box.id, m.uid)).toString('latin1'));
  return out;
}

function holdOpen(path: string): Promise<{ socket: Socket; first: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    let data = '';
    const first = new Promise<string>((r) => {
      socket.on('data', (d: Buffer) => {
        data += d.toString('latin1');
        if (data.endsWith('\r\n')) r(data);
      });
      socket.on('close', () => r(data));
    });
    socket.once('connect', () => resolve({ socket, first }));
    socket.once('error', reject);
  });
}

function holdingHandler(): ConnectionHandler & { conns: ConnectionInfo[] } {
  const conns: ConnectionInfo[] = [];
  return {
    conns,
    accept: (socket, conn) => {
      conns.push(conn);
      socket.write('hello\r\n');
    },
    refuse: (socket, _conn, reason) => closeWith(socket, `busy ${reason}\r\n`),
    shutdown: (socket) => closeWith(socket, 'bye\r\n'),
  };
}

test('the socket file gets mode 0660 and is listed as bound', () => {
  const st = statSync(socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.deepEqual(listeners.bound.map((b) => [b.proto, b.path, b.port]), [['lmtp', socketPath, 0]]);
});

test('the delivery agent delivers through lmtp:unix:/path, one outcome per recipient', async () => {
  const { logger } = captureLogger();
  const agent = createSmtpAgent({ resolver: noDns, logger, myHostname: 'frontend.test', myAddresses: [], smtpPort: 25, tls: () => ({ level: 'none' }) });
  try {
    const content = Buffer.from('From: x@remote.test\r\nSubject: over unix\r\nMessage-ID: <unix-1@remote.test>\r\n\r\nvia the socket\r\n');
    const r = await agent.deliver(job(`lmtp:unix:${socketPath}`, ['alice@example.test', 'nobody@example.test'], { content, queueId: 'QUNIX1' }));
    assert.equal(r.results.get('alice@example.test')?.outcome, 'done', r.results.get('alice@example.test')?.reason);
    assert.equal(r.results.get('nobody@example.test')?.outcome, 'failed');
    const filed = await inbox('alice@example.test');
    const copy = filed.find((t) => t.includes('Subject: over unix'));
    assert.ok(copy);
    assert.ok(copy.endsWith(content.toString('latin1')));
    assert.match(copy, /with LMTP id/);
  } finally {
    await agent.close();
  }
});

test("Python's smtplib.LMTP delivers over the socket path", async () => {
  const script = [
    'import smtplib, sys',
    'c = smtplib.LMTP(sys.argv[1])',
    'refused = c.sendmail("py@remote.test", ["bob@example.test"], b"Subject: python unix\\r\\nMessage-ID: <py-unix@remote.test>\\r\\n\\r\\nhello over a unix socket\\r\\n")',
    'print(len(refused))',
    'c.quit()',
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script, socketPath], { timeout: 20_000 });
  assert.equal(stdout.trim(), '0');
  assert.ok((await inbox('bob@example.test')).some((t) => t.includes('Subject: python unix\r\n') && t.endsWith('hello over a unix socket\r\n')));
});

test('a live socket is not taken over: EADDRINUSE, and the first listener keeps serving', async () => {
  await assert.rejects(startListeners([{ proto: 'lmtp', path: socketPath, handler: holdingHandler() }]), (err: unknown) => {
    assert.ok(err instanceof ListenError);
    assert.equal(err.code, 'EADDRINUSE');
    assert.match(err.message, /lmtp unix:.*lmtp\.sock/);
    return true;
  });
  const { socket, first } = await holdOpen(socketPath);
  assert.match(await first, /^220 .* LMTP/);
  socket.destroy();
});

test('a stale socket file (its process died) is replaced; the file is removed at close', async () => {
  const path = join(dir, 'stale.sock');
  // a socket bound and never unlinked, as a killed process leaves it
  await run('python3', ['-c', 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()', path], { timeout: 10_000 });
  assert.ok(statSync(path).isSocket());
  const handler = holdingHandler();
  const l = await startListeners([{ proto: 'lmtp', path, mode: 0o600, handler }]);
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const { socket, first } = await holdOpen(path);
    assert.equal(await first, 'hello\r\n');
    assert.equal(handler.conns[0]?.client, UNIX_CLIENT);
    socket.destroy();
  } finally {
    await l.close(1000);
  }
  assert.equal(existsSync(path), false, 'the socket file is gone after close');
});

test('a file that is not a socket is never replaced', async () => {
  const path = join(dir, 'not-a-socket');
  writeFileSync(path, 'precious');
  await assert.rejects(startListeners([{ proto: 'lmtp', path, handler: holdingHandler() }]), (err: unknown) => err instanceof ListenError && /not a socket/.test(err.code));
  assert.equal(readFileSync(path, 'utf8'), 'precious');
});

test('a socket in a directory that does not exist is a ListenError', async () => {
  const path = join(dir, 'missing', 'lmtp.sock');
  await assert.rejects(startListeners([{ proto: 'lmtp', path, handler: holdingHandler() }]), (err: unknown) => err instanceof ListenError && err.code === 'ENOENT');
});

test('the per-client limit does not apply on a Unix socket; the listener limit does', async () => {
  const path = join(dir, 'limits.sock');
  const handler = holdingHandler();
  const l = await startListeners([{ proto: 'lmtp', path, handler, maxConnections: 3, maxConnectionsPerClient: 1 }]);
  const held: Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const { socket, first } = await holdOpen(path);
      held.push(socket);
      assert.equal(await first, 'hello\r\n', `connection ${i + 1} of 3 is accepted`);
    }
    const fourth = await holdOpen(path);
    held.push(fourth.socket);
    assert.equal(await fourth.first, 'busy listener_full\r\n');
    assert.equal(l.connections(), 3);
  } finally {
    for (const s of held) s.destroy();
    await l.close(1000);
  }
});
