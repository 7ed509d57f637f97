/*
 * LMTP listener end to end (RFC 2033): the real wiring of `cartero serve` (policy, queue, local agent) on
 * an embedded store, spoken to by a raw pipelining client, Python's smtplib.LMTP and Postfix's
 * smtp-source -L. Checks one reply per recipient after DATA/BDAT, per-recipient failures (over quota,
 * alias queued), duplicate suppression when a client resends after losing our reply, and bad input.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startMailServices } from '../../src/cli/serve-mail.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { captureLogger, openTestStore, type TestStore } from '../../src/queue/testing.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import type { Store } from '../../src/store/index.js';
import { rawClient, testConfig } from './env.js';

/** The next complete reply of a client, in order (the last line of a multi-line reply). */
async function open(): Promise<{ send(text: string): void; reply(): Promise<{ code: number; text: string }>; received(): string }> {
  const c = await rawClient(port);
  let seen = 0;
  return {
    send: (text) => c.send(text),
    received: () => c.received,
    async reply() {
      const lines = await c.replies(++seen, 10_000);
      const line = lines[seen - 1]!;
      return { code: Number(line.slice(0, 3)), text: line.slice(4) };
    },
  };
}

const run = promisify(execFile);

let ts: TestStore;
let store: Store;
let server: SmtpServer;
let listeners: Listeners;
let port = 0;
let stopScheduler: () => Promise<void>;

before(async () => {
  ts = await openTestStore('cartero-lmtp-');
  store = ts.store;
  const config = testConfig();
  const { logger } = captureLogger();
  await store.directory.addDomain('example.test');
  await provisionAccount(store, 'alice@example.test', null);
  await provisionAccount(store, 'bob@example.test', null);
  await provisionAccount(store, 'carol@example.test', null);
  await store.directory.addAlias({ source: 'team@example.test', targets: ['alice@example.test', 'carol@example.test'] });
  // bob is already over his 10-byte quota
  const bob = (await store.directory.getAccount('bob@example.test'))!;
  const bobInbox = (await store.mailboxes.get(bob.id, 'INBOX'))!;
  await store.messages.append(bobInbox.id, { content: Buffer.from('Subject: x\r\n\r\nfill the quota\r\n') }, Date.now());
  await store.directory.setQuota('bob@example.test', 10);
  const mail = await startMailServices({ config, store, logger });
  mail.scheduler.start();
  stopScheduler = () => mail.scheduler.stop();
  server = createSmtpServer({ config, services: mail.lmtpServices, logger, protocol: 'lmtp' });
  listeners = await startListeners([{ proto: 'lmtp', address: '127.0.0.1', port: 0, handler: server.handler({ key: 'lmtp', submission: false }) }]);
  port = listeners.bound[0]!.port;
});

after(async () => {
  await Promise.all([server.drain(1000), listeners.close(1000)]);
  await stopScheduler();
  await ts.cleanup();
});

async function inbox(address: string): Promise<Buffer[]> {
  const account = (await store.directory.getAccount(address))!;
  const box = (await store.mailboxes.get(account.id, 'INBOX'))!;
  const metas = await store.messages.list(box.id);
  return Promise.all(metas.map((m) => store.messages.content(box.id, m.uid)));
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('LHLO is the greeting; HELO and EHLO are refused', async () => {
  const c = await open();
  assert.match((await c.reply()).text, /LMTP/);
  c.send('EHLO client.test\r\n');
  assert.equal((await c.reply()).code, 500);
  c.send('LHLO client.test\r\n');
  const r = await c.reply();
  assert.equal(r.code, 250);
  assert.match(c.received(), /250-PIPELINING/);
  assert.match(c.received(), /CHUNKING/);
  assert.doesNotMatch(c.received(), /AUTH/);
  c.send('QUIT\r\n');
  assert.equal((await c.reply()).code, 221);
});

test('one reply per recipient after DATA, in RCPT order, each for that recipient', async () => {
  const c = await open();
  await c.reply();
  const message = 'From: sender@remote.test\r\nSubject: lmtp one\r\nMessage-ID: <lmtp-1@remote.test>\r\n\r\nbody one\r\n';
  c.send(
    'LHLO client.test\r\nMAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n' +
      'RCPT TO:<bob@example.test>\r\nRCPT TO:<team@example.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n',
  );
  const codes = [];
  for (let i = 0; i < 8; i++) codes.push((await c.reply()).code);
  // LHLO, MAIL, alice, nobody (unknown), bob, team, elsewhere (LMTP never relays), 354
  assert.deepEqual(codes, [250, 250, 250, 550, 250, 250, 550, 354]);
  c.send(`${message}.\r\n`);
  const alice = await c.reply();
  const bob = await c.reply();
  const team = await c.reply();
  assert.equal(alice.code, 250, alice.text);
  assert.match(alice.text, /alice@example\.test/);
  assert.equal(bob.code, 452, bob.text);
  assert.match(bob.text, /4\.2\.2/);
  assert.equal(team.code, 250, team.text);
  assert.match(team.text, /queued as/);
  // filed before the 250 (the alias's queued copy may follow at any moment)
  const filed = await inbox('alice@example.test');
  assert.ok(filed.length >= 1);
  assert.ok(filed[0]!.toString('latin1').endsWith(message), 'the client bytes are stored unchanged after our trace headers');
  assert.match(filed[0]!.toString('latin1'), /^Return-Path: <sender@remote\.test>\r\nDelivered-To: alice@example\.test\r\nReceived: from client\.test .* with LMTP id /s);
  // the alias went through the queue: alice gets a second copy (a different delivery), carol her first
  await waitFor(async () => (await inbox('carol@example.test')).length === 1 && (await inbox('alice@example.test')).length === 2);
  c.send('QUIT\r\n');
  await c.reply();
});

test('one message for several mailboxes is stored once, each mailbox keeping its own trace headers', async () => {
  const c = await open();
  await c.reply();
  const message = 'From: sender@remote.test\r\nSubject: lmtp shared\r\nMessage-ID: <lmtp-shared@remote.test>\r\n\r\nshared body\r\n';
  c.send('LHLO client.test\r\nMAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n');
  for (let i = 0; i < 5; i++) assert.ok([250, 354].includes((await c.reply()).code));
  c.send(`${message}.\r\n`);
  assert.equal((await c.reply()).code, 250);
  assert.equal((await c.reply()).code, 250);
  const blobs = new Set<string>();
  for (const rcpt of ['alice@example.test', 'carol@example.test']) {
    const account = (await store.directory.getAccount(rcpt))!;
    const box = (await store.mailboxes.get(account.id, 'INBOX'))!;
    const metas = await store.messages.list(box.id);
    const texts = await Promise.all(metas.map(async (m) => [m, (await store.messages.content(box.id, m.uid)).toString('latin1')] as const));
    const [meta, text] = texts.find(([, t]) => t.includes('lmtp-shared@remote.test'))!;
    assert.ok(text.startsWith(`Return-Path: <sender@remote.test>\r\nDelivered-To: ${rcpt}\r\nReceived: from client.test`), text.slice(0, 120));
    assert.ok(text.endsWith(message));
    assert.equal(meta.size, Buffer.byteLength(text, 'latin1'));
    blobs.add(meta.blobId);
  }
  assert.equal(blobs.size, 1, 'both mailboxes share one blob');
  assert.equal(await store.blobs.refs([...blobs][0]!), 2);
  c.send('QUIT\r\n');
  await c.reply();
});

test('the same bytes sent again (a client that lost our reply) are not filed twice', async () => {
  const message = 'From: a@remote.test\r\nSubject: resend\r\nMessage-ID: <resend@remote.test>\r\n\r\nonce only\r\n';
  const before = (await inbox('carol@example.test')).length;
  for (let i = 0; i < 2; i++) {
    const c = await open();
    await c.reply();
    c.send(`LHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n`);
    for (let j = 0; j < 4; j++) await c.reply();
    c.send(`${message}.\r\n`);
    const r = await c.reply();
    assert.equal(r.code, 250, r.text);
    c.send('QUIT\r\n');
    await c.reply();
  }
  const after = await inbox('carol@example.test');
  assert.equal(after.length, before + 1);
});

test('BDAT LAST is answered once per recipient', async () => {
  const c = await open();
  await c.reply();
  const body = 'Subject: chunked\r\n\r\nchunk\r\n';
  c.send(`LHLO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\nBDAT ${Buffer.byteLength(body)} LAST\r\n${body}`);
  for (let i = 0; i < 4; i++) assert.equal((await c.reply()).code, 250);
  const a = await c.reply();
  const b = await c.reply();
  assert.equal(a.code, 250);
  assert.match(a.text, /alice/);
  assert.equal(b.code, 250);
  assert.match(b.text, /carol/);
  c.send('QUIT\r\n');
  await c.reply();
});

test('a message refused as a whole (bare LF) is refused once per recipient', async () => {
  const c = await open();
  await c.reply();
  c.send('LHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n');
  for (let i = 0; i < 5; i++) await c.reply();
  c.send('Subject: smuggle\r\n\r\nline\nMAIL FROM:<evil@x>\r\n.\r\n');
  const a = await c.reply();
  const b = await c.reply();
  assert.equal(a.code, 550);
  assert.equal(b.code, 550);
  c.send('NOOP\r\n');
  assert.equal((await c.reply()).code, 250, 'the session goes on');
  c.send('QUIT\r\n');
  await c.reply();
});

test("Python's smtplib.LMTP delivers a message", async () => {
  const script = [
    'import smtplib, sys',
    'c = smtplib.LMTP("127.0.0.1", int(sys.argv[1]))',
    'refused = c.sendmail("py@remote.test", ["alice@example.test"], b"Subject: from python\\r\\nMessage-ID: <py-lmtp@remote.test>\\r\\n\\r\\nhello from smtplib\\r\\n")',
    'print(len(refused))',
    'c.quit()',
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script, String(port)], { timeout: 20_000 });
  assert.equal(stdout.trim(), '0');
  const texts = (await inbox('alice@example.test')).map((b) => b.toString('latin1'));
  assert.ok(texts.some((t) => t.includes('Subject: from python\r\n') && t.endsWith('hello from smtplib\r\n')));
});

test("Postfix's smtp-source -L delivers 20 messages over LMTP", async (t) => {
  try {
    await run('smtp-source', ['-h'], { timeout: 5000 }).catch((err: { code?: unknown }) => {
      if (err.code === 'ENOENT') throw err;
    });
  } catch {
    if (process.env.CI) throw new Error('smtp-source (Debian package postfix) is required in CI');
    t.skip('smtp-source not installed');
    return;
  }
  const before = (await inbox('carol@example.test')).length;
  await run('smtp-source', ['-L', '-s', '4', '-m', '20', '-l', '2048', '-f', 'source@remote.test', '-t', 'carol@example.test', `127.0.0.1:${port}`], { timeout: 60_000 });
  assert.equal((await inbox('carol@example.test')).length, before + 20);
});
