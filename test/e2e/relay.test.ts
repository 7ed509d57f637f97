/*
 * The whole mail path of one node, in and out: a trusted client submits over real SMTP, the message is
 * committed, routed (virtual alias map, transport map, MX through a loopback DNS server) and sent by the
 * SMTP client to a scripted next hop on loopback; a recipient the next hop refuses comes back to the
 * local sender as an RFC 3464 bounce in their INBOX. Everything binds 127.0.0.x; DNS is our own server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMailServices, type MailServices } from '../../src/cli/serve-mail.js';
import { validateConfig } from '../../src/config/validate.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { startAuthority } from '../../src/dns/authority.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { captureLogger, inboxTexts, openTestStore, type TestStore } from '../../src/queue/testing.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import { startPeer, type Peer } from '../delivery/peer.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';

let ts: TestStore;
let mail: MailServices;
let server: SmtpServer;
let listeners: Listeners;
let peer: Peer;
let dns: Awaited<ReturnType<typeof startAuthority>>;
let port = 0;
const { logger, lines } = captureLogger();

before(async () => {
  ts = await openTestStore('cartero-relay-');
  await ts.store.directory.addDomain('example.test');
  await provisionAccount(ts.store, 'alice@example.test', null);
  peer = await startPeer({ rcpt: (to) => (to.includes('refused') ? '550 5.1.1 <refused@far.test>: User unknown' : '250 2.1.5 Ok') }, '127.0.0.2');
  // far.test's MX is the peer on 127.0.0.2
  dns = await startAuthority({
    zone: { 'far.test': { MX: [{ preference: 10, exchange: 'mx.far.test' }] }, 'mx.far.test': { A: ['127.0.0.2'] } },
  });
  const result = validateConfig(
    {
      hostname: 'mx.example.test',
      domains: ['example.test'],
      mynetworks: ['127.0.0.0/8'],
      dns: { servers: [dns.server], timeout: 1, retries: 0 },
      smtp_client: { port: peer.port, tls: 'none' },
      virtual_alias_maps: { 'team@example.test': ['alice@example.test', 'bob@far.test'] },
      smtp: { listen: [] },
      imap: { listen: [] },
      pop3: { listen: [] },
      lmtp: { listen: [] },
    },
    '/tmp',
  );
  assert.ok('config' in result, JSON.stringify('problems' in result ? result.problems : null));
  const config = result.config;
  mail = await startMailServices({ config, store: ts.store, logger });
  mail.scheduler.start();
  server = createSmtpServer({ config, services: mail.services, logger });
  listeners = await startListeners([{ proto: 'smtp', address: '127.0.0.1', port: 0, handler: server.handler({ key: 'smtp', submission: false }) }]);
  port = listeners.bound[0]!.port;
});

after(async () => {
  await Promise.all([server.drain(1000), listeners.close(1000)]);
  await mail.scheduler.stop();
  await mail.close();
  await peer.close();
  await dns.close();
  await ts.cleanup();
});

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log:\n${lines.map((l) => l.msg).join('\n')}`);
    await sleep(20);
  }
}

test('relayed by MX through the loopback DNS, with the virtual alias expanded to a local and a remote copy', async () => {
  const c = await TestSmtpClient.open(port);
  await c.command('EHLO client.test', 250);
  const body = 'From: carol@inside.test\r\nTo: team@example.test\r\nSubject: relay one\r\nMessage-ID: <relay-1@inside.test>\r\n\r\nhello far away\r\n';
  assert.equal((await c.send('carol@inside.test', ['team@example.test'], body)).code, 250);
  await c.command('QUIT', 221);
  await until(() => peer.messages.length === 1, 'the next hop to receive the message');
  const got = peer.messages[0]!;
  assert.equal(got.from, 'carol@inside.test');
  assert.deepEqual(got.to, ['bob@far.test']);
  assert.ok(got.data.toString('latin1').endsWith(body), 'the body reaches the next hop unchanged');
  assert.match(got.data.toString('latin1'), /^Received: from client\.test/);
  await until(async () => (await inboxTexts(ts.store, 'alice@example.test')).some((t) => t.includes('relay one')), 'the local copy');
  const sent = lines.find((l) => l.recipient === 'bob@far.test' && l.status === 'sent');
  assert.ok(sent, 'a delivery log line for the remote recipient');
  assert.match(String(sent.relay), /mx\.far\.test\[127\.0\.0\.2\]/);
  assert.deepEqual(dns.queries.map((q) => `${q.name}/${q.type}`).filter((q) => q.startsWith('far.test')), ['far.test/MX']);
});

test('a recipient the next hop refuses bounces to the local sender, once, as an RFC 3464 report', async () => {
  const c = await TestSmtpClient.open(port);
  await c.command('EHLO client.test', 250);
  const body = 'From: alice@example.test\r\nTo: refused@far.test\r\nSubject: will bounce\r\nMessage-ID: <bounce-1@example.test>\r\n\r\nnobody home\r\n';
  assert.equal((await c.send('alice@example.test', ['refused@far.test'], body)).code, 250);
  await c.command('QUIT', 221);
  await until(async () => (await inboxTexts(ts.store, 'alice@example.test')).some((t) => t.includes('multipart/report')), 'the bounce in the sender INBOX');
  const bounces = (await inboxTexts(ts.store, 'alice@example.test')).filter((t) => t.includes('multipart/report'));
  assert.equal(bounces.length, 1);
  const report = bounces[0]!;
  assert.match(report, /^Return-Path: <>\r\n/);
  assert.match(report, /From: MAILER-DAEMON@mx\.example\.test/i);
  assert.match(report, /Final-Recipient: rfc822; ?refused@far\.test/i);
  assert.match(report, /Action: failed/);
  assert.match(report, /Status: 5\.1\.1/);
  assert.match(report, /Diagnostic-Code: smtp; ?550 5\.1\.1/);
  assert.match(report, /Subject: will bounce/, 'the original headers come back');
  assert.ok(lines.some((l) => l.status === 'bounced' && l.recipient === 'refused@far.test'));
});
