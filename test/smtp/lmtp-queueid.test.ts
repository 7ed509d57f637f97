/*
 * The queue id across the LMTP hop (issue 5 item 4, docs/xqueueid.md): a Cartero LMTP listener advertises
 * XQUEUEID in its LHLO reply and files a message sent with MAIL FROM:<..> XQUEUEID=<id> under the key
 * `lmtp:<id>:<recipient>`. So a frontend that lost the replies (a connection cut after the backend got
 * the final dot) and sends again makes no second copy, while two queue entries that happen to hold the
 * same bytes are two messages. The parameter is bounded and validated (SMTP listeners advertise and take
 * it too since the receipts of docs/xqueueid.md; test/smtp/smtp-receipts.test.ts covers that side).
 * Real wiring on an embedded store; the frontend is the real delivery agent.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startMailServices } from '../../src/cli/serve-mail.js';
import { createSmtpAgent } from '../../src/delivery/smtp/agent.js';
import { deliveryId } from '../../src/delivery/lmtp-services.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import type { Resolver } from '../../src/dns/types.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { captureLogger, openTestStore, type TestStore } from '../../src/queue/testing.js';
import { parseMailParams } from '../../src/smtp/proto/params.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import { job } from '../delivery/helpers.js';
import { rawClient, testConfig } from './env.js';

const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'no DNS in this test' }) };

let ts: TestStore;
let lmtp: SmtpServer;
let smtp: SmtpServer;
let listeners: Listeners;
let lmtpPort = 0;
let smtpPort = 0;
const { logger } = captureLogger();

before(async () => {
  ts = await openTestStore('cartero-lmtp-qid-');
  await ts.store.directory.addDomain('example.test');
  for (const a of ['alice', 'bob', 'carol', 'dave', 'erin']) await provisionAccount(ts.store, `${a}@example.test`, null);
  const config = testConfig();
  const mail = await startMailServices({ config, store: ts.store, logger });
  lmtp = createSmtpServer({ config, services: mail.lmtpServices, logger, protocol: 'lmtp' });
  smtp = createSmtpServer({ config, services: mail.services, logger });
  listeners = await startListeners([
    { proto: 'lmtp', address: '127.0.0.1', port: 0, handler: lmtp.handler({ key: 'lmtp', submission: false }) },
    { proto: 'smtp', address: '127.0.0.1', port: 0, handler: smtp.handler({ key: 'smtp', submission: false }) },
  ]);
  lmtpPort = listeners.bound[0]!.port;
  smtpPort = listeners.bound[1]!.port;
});

after(async () => {
  await Promise.all([lmtp.drain(1000), smtp.drain(1000), listeners.close(1000)]);
  await ts.cleanup();
});

async function inbox(address: string): Promise<string[]> {
  const account = (await ts.store.directory.getAccount(address))!;
  const box = (await ts.store.mailboxes.get(account.id, 'INBOX'))!;
  const out: string[] = [];
  for (const m of await ts.store.messages.list(box.id)) out.push((await ts.store.messages.content(box.id, m.uid)).toString('latin1'));
  return out;
}

const withSubject = (texts: string[], subject: string) => texts.filter((t) => t.includes(`Subject: ${subject}\r\n`)).length;

function frontend() {
  const { logger: log, lines } = captureLogger();
  // no connection cache: each delivery opens its own connection, as after a frontend restart
  const agent = createSmtpAgent({ resolver: noDns, logger: log, myHostname: 'frontend.test', myAddresses: [], smtpPort: 25, tls: () => ({ level: 'none' }), connectionCache: { maxConnections: 0 } });
  return Object.assign(agent, { lines });
}

/** Reads replies of a raw client one complete line at a time. */
async function session(port: number) {
  const c = await rawClient(port);
  let seen = 0;
  return {
    send: (text: string) => c.send(text),
    received: () => c.received,
    async reply(): Promise<{ code: number; text: string }> {
      const lines = await c.replies(++seen, 10_000);
      const line = lines[seen - 1]!;
      return { code: Number(line.slice(0, 3)), text: line.slice(4) };
    },
  };
}

/**
 * A proxy in front of the LMTP server that lets the client's final dot through, swallows the server's
 * per-recipient replies and, once `replies` of them reached it (the backend has filed the message),
 * cuts the client's connection: the frontend's view of a crash between DATA and the replies.
 */
async function cuttingProxy(target: number, replies: number): Promise<{ port: number; swallowed: Promise<string>; close(): Promise<void> }> {
  let swallowed!: (s: string) => void;
  const done = new Promise<string>((resolve) => (swallowed = resolve));
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    let cut = false;
    let after = '';
    upstream.on('data', (d: Buffer) => {
      if (!cut) return void client.write(d);
      after += d.toString('latin1');
      if (after.split('\r\n').length - 1 >= replies) {
        swallowed(after);
        client.destroy();
        upstream.destroy();
      }
    });
    client.on('data', (d: Buffer) => {
      upstream.write(d);
      if (d.includes('\r\n.\r\n')) cut = true;
    });
    for (const s of [client, upstream]) s.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    swallowed: done,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

test('LHLO advertises XQUEUEID, and so does EHLO on an SMTP listener, whose MAIL takes it', async () => {
  const l = await session(lmtpPort);
  await l.reply();
  l.send('LHLO frontend.test\r\n');
  assert.equal((await l.reply()).code, 250);
  assert.match(l.received(), /^250[- ]XQUEUEID\r$/m);
  l.send('QUIT\r\n');
  await l.reply();
  const s = await session(smtpPort);
  await s.reply();
  s.send('EHLO client.test\r\n');
  assert.equal((await s.reply()).code, 250);
  assert.match(s.received(), /^250[- ]XQUEUEID\r$/m);
  s.send('MAIL FROM:<a@remote.test> XQUEUEID=Q123\r\n');
  const r = await s.reply();
  assert.equal(r.code, 250, r.text);
  s.send('QUIT\r\n');
  await s.reply();
});

test('XQUEUEID values: xtext, bounded, validated; bad ones are 501', async () => {
  const good = parseMailParams(' XQUEUEID=4Bx7K9mzQ2a.b-c');
  assert.ok(good.ok && good.value.xqueueid === '4Bx7K9mzQ2a.b-c');
  const bad = [
    ' XQUEUEID',
    ' XQUEUEID=',
    ` XQUEUEID=${'Q'.repeat(65)}`,
    ' XQUEUEID=a+2Fb', // "/": not in a queue id
    ' XQUEUEID=a+3Ab', // ":": would make the idempotency key ambiguous
    ' XQUEUEID=Q1+0D+0AX', // CR LF
    ' XQUEUEID=+zz',
    ' XQUEUEID=-leading',
    ' XQUEUEID=Q1 XQUEUEID=Q2',
    ' XQUEUEID=\u00e9t\u00e9',
  ];
  for (const p of bad) assert.ok(!parseMailParams(p).ok, `refused: ${p}`);
  assert.ok(parseMailParams(` XQUEUEID=${'Q'.repeat(64)}`).ok);
  const c = await session(lmtpPort);
  await c.reply();
  c.send('LHLO frontend.test\r\n');
  await c.reply();
  for (const p of [' XQUEUEID=', ' XQUEUEID=a+2Fb', ` XQUEUEID=${'Q'.repeat(65)}`]) {
    c.send(`MAIL FROM:<a@remote.test>${p}\r\n`);
    const r = await c.reply();
    assert.equal(r.code, 501, `${p}: ${r.code} ${r.text}`);
  }
  c.send('MAIL FROM:<a@remote.test> XQUEUEID=Q-ok\r\n');
  assert.equal((await c.reply()).code, 250, 'the session goes on');
  c.send('QUIT\r\n');
  await c.reply();
});

test('the filing id: lmtp:<queue id> when given, the content hash otherwise', () => {
  const content = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  assert.equal(deliveryId({ sender: '', recipients: [], meta: { xqueueid: 'ABC1' } }, content), 'lmtp:ABC1');
  const hashed = deliveryId({ sender: '', recipients: [], meta: {} }, content);
  assert.match(hashed, /^L[0-9a-f]{32}$/);
  assert.equal(deliveryId({ sender: '', recipients: [], meta: { xqueueid: '' } }, content), hashed);
});

test('the frontend sends its queue id; a crash between the final dot and the replies, then a resend: one copy each', async () => {
  const proxy = await cuttingProxy(lmtpPort, 2);
  const a = frontend();
  try {
    const content = Buffer.from('From: x@remote.test\r\nSubject: qid-crash\r\nMessage-ID: <qid-crash@remote.test>\r\n\r\ncut after the dot\r\n');
    const j = job(`lmtp:[127.0.0.1]:${proxy.port}`, ['alice@example.test', 'bob@example.test'], { content, queueId: '4BQIDCRASH1' });
    const first = await a.deliver(j);
    assert.equal(first.results.get('alice@example.test')?.outcome, 'deferred', 'a reply we never read is never "done"');
    assert.equal(first.results.get('bob@example.test')?.outcome, 'deferred');
    // the backend did file both copies: its 250s went nowhere
    assert.match(await proxy.swallowed, /^250 .*\r\n250 /);
    assert.equal(withSubject(await inbox('alice@example.test'), 'qid-crash'), 1);
    assert.equal(withSubject(await inbox('bob@example.test'), 'qid-crash'), 1);
    // the retry (the queue entry's next attempt) goes straight to the backend
    const retry = await a.deliver({ ...j, destination: `lmtp:[127.0.0.1]:${lmtpPort}`, now: j.now + 300_000 });
    assert.equal(retry.results.get('alice@example.test')?.outcome, 'done', retry.results.get('alice@example.test')?.reason);
    assert.equal(retry.results.get('bob@example.test')?.outcome, 'done');
    assert.equal(withSubject(await inbox('alice@example.test'), 'qid-crash'), 1);
    assert.equal(withSubject(await inbox('bob@example.test'), 'qid-crash'), 1);
  } finally {
    await a.close();
    await proxy.close();
  }
});

test('two queue entries with identical bytes are two messages', async () => {
  const a = frontend();
  try {
    const content = Buffer.from('From: cron@remote.test\r\nSubject: qid-twins\r\n\r\nthe same report, sent twice on purpose\r\n');
    const dest = `lmtp:[127.0.0.1]:${lmtpPort}`;
    for (const queueId of ['4BTWIN0001', '4BTWIN0002']) {
      const r = await a.deliver(job(dest, ['carol@example.test'], { content, queueId }));
      assert.equal(r.results.get('carol@example.test')?.outcome, 'done');
    }
    assert.equal(withSubject(await inbox('carol@example.test'), 'qid-twins'), 2);
    // and the same entry again (a retry) adds nothing
    await a.deliver(job(dest, ['carol@example.test'], { content, queueId: '4BTWIN0002' }));
    assert.equal(withSubject(await inbox('carol@example.test'), 'qid-twins'), 2);
  } finally {
    await a.close();
  }
});

test('a client without XQUEUEID keeps the content-hash key: identical bytes are one copy', async () => {
  const message = 'From: a@remote.test\r\nSubject: qid-none\r\n\r\nno queue id\r\n';
  for (let i = 0; i < 2; i++) {
    const c = await session(lmtpPort);
    await c.reply();
    c.send('LHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<dave@example.test>\r\nDATA\r\n');
    for (let k = 0; k < 4; k++) await c.reply();
    c.send(`${message}.\r\n`);
    assert.equal((await c.reply()).code, 250);
    c.send('QUIT\r\n');
    await c.reply();
  }
  assert.equal(withSubject(await inbox('dave@example.test'), 'qid-none'), 1);
});

test('a queue id the server would refuse is not sent: the delivery still works (content-hash key)', async () => {
  const a = frontend();
  try {
    const content = Buffer.from('Subject: qid-odd\r\n\r\nodd id\r\n');
    const r = await a.deliver(job(`lmtp:[127.0.0.1]:${lmtpPort}`, ['erin@example.test'], { content, queueId: 'odd/id:with stuff' }));
    assert.equal(r.results.get('erin@example.test')?.outcome, 'done', r.results.get('erin@example.test')?.reason);
    assert.equal(withSubject(await inbox('erin@example.test'), 'qid-odd'), 1);
  } finally {
    await a.close();
  }
});
