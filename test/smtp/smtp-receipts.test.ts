/*
 * XQUEUEID on an SMTP listener (docs/xqueueid.md): advertised in EHLO, validated in MAIL (501 for a bad
 * value, as on LMTP), and a resend of the same bytes under the same id is answered 250 with the first
 * queue id without a second queue entry; a resend that adds a recipient queues only that one. Real
 * wiring (serve-mail services, SMTP server, embedded store) on loopback; the scheduler is not started,
 * so the queue shows exactly what each commit made.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startMailServices } from '../../src/cli/serve-mail.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { captureLogger, inboxTexts, openTestStore, type TestStore } from '../../src/queue/testing.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';
import { testConfig } from './env.js';

let ts: TestStore;
let smtp: SmtpServer;
let listeners: Listeners;
let port = 0;
const { logger, lines } = captureLogger();

before(async () => {
  ts = await openTestStore('cartero-smtp-receipts-');
  await ts.store.directory.addDomain('example.test');
  for (const a of ['alice', 'bob']) await provisionAccount(ts.store, `${a}@example.test`, null);
  const config = testConfig();
  const mail = await startMailServices({ config, store: ts.store, logger });
  smtp = createSmtpServer({ config, services: mail.services, logger });
  listeners = await startListeners([{ proto: 'smtp', address: '127.0.0.1', port: 0, handler: smtp.handler({ key: 'smtp', submission: false }) }]);
  port = listeners.bound[0]!.port;
});

after(async () => {
  await Promise.all([smtp.drain(1000), listeners.close(1000)]);
  await ts.cleanup();
});

async function send(xqueueid: string | null, to: string[], body: string): Promise<{ code: number; text: string }> {
  const c = await TestSmtpClient.open(port);
  try {
    await c.command('EHLO relay.remote.test', 250);
    await c.command(`MAIL FROM:<a@remote.test>${xqueueid ? ` XQUEUEID=${xqueueid}` : ''}`, 250);
    for (const r of to) await c.command(`RCPT TO:<${r}>`, 250);
    await c.command('DATA', 354);
    // the body ends in CRLF: this line is the terminating dot
    return await c.command(`${body}.`);
  } finally {
    c.close();
  }
}

const queuedAs = (text: string) => /queued as (\S+)/.exec(text)?.[1];

test('EHLO advertises XQUEUEID; bad values are 501 and the session goes on', async () => {
  const c = await TestSmtpClient.open(port);
  const ehlo = await c.command('EHLO relay.remote.test', 250);
  assert.match(ehlo.text, /^XQUEUEID$/m);
  for (const bad of ['XQUEUEID=', 'XQUEUEID=a+2Fb', `XQUEUEID=${'Q'.repeat(65)}`, 'XQUEUEID', 'XQUEUEID=Q1 XQUEUEID=Q2']) {
    assert.equal((await c.command(`MAIL FROM:<a@remote.test> ${bad}`)).code, 501, bad);
  }
  assert.equal((await c.command('MAIL FROM:<a@remote.test> XQUEUEID=Q-ok')).code, 250);
  c.close();
});

test('a resend with the same id and bytes: 250 with the first id, no second copy; a new recipient alone is delivered', async () => {
  const body = 'From: a@remote.test\r\nSubject: smtp resend\r\nMessage-ID: <smtp-resend@remote.test>\r\n\r\nonce\r\n';
  const copies = async (address: string) => (await inboxTexts(ts.store, address)).filter((t) => t.includes('<smtp-resend@remote.test>')).length;
  const first = await send('4BQSMTP1', ['alice@example.test'], body);
  assert.equal(first.code, 250);
  const again = await send('4BQSMTP1', ['alice@example.test'], body);
  assert.equal(again.code, 250);
  assert.equal(queuedAs(again.text), queuedAs(first.text));
  // filed by the first commit; the resend added nothing
  assert.equal(await copies('alice@example.test'), 1);
  const resent = lines.filter((l) => l.status === 'resent');
  assert.equal(resent.length, 1);
  assert.equal(resent[0]!.client, '127.0.0.1');
  assert.equal(resent[0]!.client_queue_id, '4BQSMTP1');

  const more = await send('4BQSMTP1', ['alice@example.test', 'bob@example.test'], body);
  assert.equal(more.code, 250);
  assert.notEqual(queuedAs(more.text), queuedAs(first.text));
  assert.deepEqual([await copies('alice@example.test'), await copies('bob@example.test')], [1, 1]);
});

test('without XQUEUEID, or with another id, identical bytes are queued again', async () => {
  const body = 'From: a@remote.test\r\nSubject: smtp plain\r\n\r\ntwice\r\n';
  const ids = [await send(null, ['alice@example.test'], body), await send(null, ['alice@example.test'], body), await send('4BQSMTP2', ['alice@example.test'], body), await send('4BQSMTP3', ['alice@example.test'], body)].map((r) => queuedAs(r.text));
  assert.equal(new Set(ids).size, 4);
});
