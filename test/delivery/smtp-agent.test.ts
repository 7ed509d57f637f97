/*
 * The SMTP delivery agent against scripted peers on loopback: the protocol rules (pipelining, DSN
 * parameters, per-recipient replies, SIZE, 8BITMIME downgrade, SMTPUTF8), host fallback with
 * Postfix-style reasons, STARTTLS policies with a certificate made at test time, AUTH for a relayhost,
 * broken peers (dropped mid-DATA, silent, garbage), connection reuse, the per-destination limit and
 * the "site is down" suspension.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { createServer } from 'node:net';
import type { Resolver } from '../../src/dns/types.js';
import { createSmtpAgent, type SmtpAgentOptions } from '../../src/delivery/smtp/agent.js';
import { captureLogger, freePort, job, makeCertificate } from './helpers.js';
import { startPeer, type Peer, type PeerScript } from './peer.js';

const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'no DNS in this test' }) };
const opened: { close(): Promise<void> }[] = [];
let cert: ReturnType<typeof makeCertificate>;

before(() => {
  cert = makeCertificate('mx.tls.test');
});
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function peer(script: PeerScript = {}, address?: string): Promise<Peer> {
  const p = await startPeer(script, address);
  opened.push(p);
  return p;
}

function agent(over: Partial<SmtpAgentOptions> = {}) {
  const { logger, lines } = captureLogger();
  const a = createSmtpAgent({ resolver: noDns, logger, myHostname: 'client.test', myAddresses: [], smtpPort: 25, tls: () => ({ level: 'none' }), ...over });
  opened.push(a);
  return Object.assign(a, { lines });
}

const dest = (p: Peer) => `smtp:[${p.address}]:${p.port}`;

test('delivers with PIPELINING in one write, DSN parameters passed on, Postfix-style reasons and relay', async () => {
  const p = await peer();
  const a = agent();
  const j = job(dest(p), ['bob@rcpt.test', 'carol@rcpt.test'], { meta: { ret: 'HDRS', envid: 'env+1 x' } });
  j.recipients[0]!.notify = ['SUCCESS', 'FAILURE'];
  j.recipients[0]!.orcpt = 'rfc822;Bob=Smith@rcpt.test';
  const r = await a.deliver(j);
  assert.equal(r.relay, `127.0.0.1[127.0.0.1]:${p.port}`);
  assert.deepEqual([...r.results.values()], [
    { outcome: 'done', reason: '250 2.0.0 Ok: queued as Q1' },
    { outcome: 'done', reason: '250 2.0.0 Ok: queued as Q1' },
  ]);
  assert.equal(r.peerDsn, true);
  assert.equal(p.messages.length, 1);
  assert.deepEqual(p.messages[0]!.to, ['bob@rcpt.test', 'carol@rcpt.test']);
  assert.equal(p.messages[0]!.data.toString(), j.content.toString());
  const size = j.content.length;
  assert.ok(p.commands.includes(`MAIL FROM:<alice@sender.test> SIZE=${size} RET=HDRS ENVID=env+2B1+20x`), p.commands.join('|'));
  assert.ok(p.commands.includes('RCPT TO:<bob@rcpt.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+3DSmith@rcpt.test'));
  assert.ok(p.commands.includes('RCPT TO:<carol@rcpt.test>'));
  assert.ok(p.chunks.some((c) => /^MAIL FROM:.*\r\nRCPT TO:.*\r\nRCPT TO:.*\r\nDATA\r\n$/s.test(c)), 'MAIL, RCPTs and DATA in one write');
});

test('without PIPELINING and DSN: one command at a time, no DSN parameters, peerDsn false; dot-stuffing', async () => {
  const p = await peer({ capabilities: ['SIZE 100000', '8BITMIME'] });
  const a = agent();
  const content = Buffer.from('Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n');
  const j = job(dest(p), ['bob@rcpt.test'], { meta: { ret: 'FULL' }, content });
  j.recipients[0]!.notify = ['NEVER'];
  const r = await a.deliver(j);
  assert.equal(r.results.get('bob@rcpt.test')?.outcome, 'done');
  assert.equal(r.peerDsn, false);
  assert.ok(p.commands.includes(`MAIL FROM:<alice@sender.test> SIZE=${content.length}`));
  assert.ok(p.commands.includes('RCPT TO:<bob@rcpt.test>'));
  assert.ok(!p.chunks.some((c) => c.includes('RCPT') && c.includes('DATA')));
  assert.equal(p.messages[0]!.data.toString(), content.toString());
});

test('5xx to one RCPT fails that recipient only, 4xx defers it; DATA reply goes to the accepted ones', async () => {
  const p = await peer({
    rcpt: (to) => (to.startsWith('gone') ? `550 5.1.1 <${to}>: Recipient address rejected: User unknown` : to.startsWith('full') ? `452 4.2.2 <${to}>: Mailbox full` : '250 2.1.5 Ok'),
  });
  const a = agent();
  const r = await a.deliver(job(dest(p), ['ok@rcpt.test', 'gone@rcpt.test', 'full@rcpt.test']));
  const relay = `127.0.0.1[127.0.0.1]:${p.port}`;
  assert.deepEqual(r.results.get('ok@rcpt.test'), { outcome: 'done', reason: '250 2.0.0 Ok: queued as Q1' });
  assert.deepEqual(r.results.get('gone@rcpt.test'), {
    outcome: 'failed',
    reason: `host ${relay} said: 550 5.1.1 <gone@rcpt.test>: Recipient address rejected: User unknown (in reply to RCPT TO command)`,
  });
  assert.deepEqual(r.results.get('full@rcpt.test'), { outcome: 'deferred', reason: `host ${relay} said: 452 4.2.2 <full@rcpt.test>: Mailbox full (in reply to RCPT TO command)` });
  assert.deepEqual(p.messages[0]!.to, ['ok@rcpt.test']);
});

test('every RCPT refused: no message is sent; final DATA 5xx and 4xx apply to all accepted', async () => {
  const p = await peer({ rcpt: (to) => `550 5.1.1 <${to}>: nope` });
  const a = agent();
  const r = await a.deliver(job(dest(p), ['a@rcpt.test', 'b@rcpt.test']));
  assert.deepEqual([...r.results.values()].map((x) => x.outcome), ['failed', 'failed']);
  assert.equal(p.messages.length, 0);

  const q = await peer({ final: () => '554 5.7.1 Message rejected as spam' });
  const r2 = await agent().deliver(job(dest(q), ['a@rcpt.test', 'b@rcpt.test']));
  for (const v of r2.results.values()) {
    assert.deepEqual(v, { outcome: 'failed', reason: `host 127.0.0.1[127.0.0.1]:${q.port} said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command)` });
  }
  const s = await peer({ final: () => '451 4.3.0 try later' });
  const r3 = await agent().deliver(job(dest(s), ['a@rcpt.test']));
  assert.equal(r3.results.get('a@rcpt.test')?.outcome, 'deferred');
});

test('MAIL refused: 5xx fails everyone, 4xx defers with the reply', async () => {
  const p = await peer({ mail: () => '553 5.7.1 <alice@sender.test>: Sender address rejected' });
  const r = await agent().deliver(job(dest(p), ['a@rcpt.test']));
  assert.match(r.results.get('a@rcpt.test')!.reason, /553 5\.7\.1 .*Sender address rejected \(in reply to MAIL FROM command\)/);
  assert.equal(r.results.get('a@rcpt.test')!.outcome, 'failed');
  const q = await peer({ mail: () => '451 4.3.0 busy' });
  const r2 = await agent().deliver(job(dest(q), ['a@rcpt.test']));
  assert.deepEqual(r2.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `host 127.0.0.1[127.0.0.1]:${q.port} said: 451 4.3.0 busy (in reply to MAIL FROM command)` });
});

test('connection refused and 4xx greeting defer with Postfix wording; EHLO refused falls back to HELO', async () => {
  const port = await freePort();
  const r = await agent().deliver(job(`smtp:[127.0.0.1]:${port}`, ['a@rcpt.test']));
  assert.deepEqual(r.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused` });
  assert.equal(r.relay, 'none');

  const busy = await peer({ greeting: '421 4.3.2 Service shutting down' });
  const r2 = await agent().deliver(job(dest(busy), ['a@rcpt.test']));
  assert.deepEqual(r2.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `host 127.0.0.1[127.0.0.1]:${busy.port} refused to talk to me: 421 4.3.2 Service shutting down` });

  const old = await peer({ ehloReply: '502 5.5.1 EHLO not implemented' });
  const r3 = await agent().deliver(job(dest(old), ['a@rcpt.test']));
  assert.equal(r3.results.get('a@rcpt.test')?.outcome, 'done');
  assert.ok(old.commands.includes('HELO client.test'));
  assert.ok(old.commands.includes('MAIL FROM:<alice@sender.test>'), 'no ESMTP parameters after HELO');
});

test('SIZE: a message larger than the peer announces fails without DATA', async () => {
  const p = await peer({ capabilities: ['PIPELINING', 'SIZE 20'] });
  const r = await agent().deliver(job(dest(p), ['a@rcpt.test']));
  const v = r.results.get('a@rcpt.test')!;
  assert.equal(v.outcome, 'failed');
  assert.match(v.reason, /^message size \d+ exceeds size limit 20 of server 127\.0\.0\.1\[127\.0\.0\.1\]:\d+$/);
  assert.ok(!p.commands.some((c) => c.startsWith('MAIL')));
});

test('8-bit body to a peer without 8BITMIME goes as quoted-printable; with 8BITMIME as is with BODY=8BITMIME', async () => {
  const content = Buffer.from('Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCañón\r\n', 'utf8');
  const seven = await peer({ capabilities: ['PIPELINING'] });
  const r = await agent().deliver(job(dest(seven), ['a@rcpt.test'], { content, meta: { body: '8BITMIME' } }));
  assert.equal(r.results.get('a@rcpt.test')?.outcome, 'done');
  const got = seven.messages[0]!.data.toString('latin1');
  assert.match(got, /Content-Transfer-Encoding: quoted-printable\r\n\r\nCa=C3=B1=C3=B3n\r\n$/);
  assert.ok(!/[\x80-\xff]/.test(got));
  assert.ok(seven.commands.includes('MAIL FROM:<alice@sender.test>'));

  const eight = await peer();
  await agent().deliver(job(dest(eight), ['a@rcpt.test'], { content, meta: { body: '8BITMIME' } }));
  assert.deepEqual(eight.messages[0]!.data, content);
  assert.ok(eight.commands.some((c) => c.includes('BODY=8BITMIME')));

  const odd = Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nCañón\r\n', 'utf8');
  const r3 = await agent().deliver(job(dest(seven), ['a@rcpt.test'], { content: odd }));
  assert.equal(r3.results.get('a@rcpt.test')?.outcome, 'deferred');
  assert.match(r3.results.get('a@rcpt.test')!.reason, /does not support 8BITMIME and cannot convert .*without a boundary/);
});

test('SMTPUTF8 needed and not offered fails with a clear reason; offered → SMTPUTF8 parameter', async () => {
  const no = await peer({ capabilities: ['PIPELINING', '8BITMIME'] });
  const r = await agent().deliver(job(dest(no), ['josé@rcpt.test']));
  assert.deepEqual(r.results.get('josé@rcpt.test'), { outcome: 'failed', reason: `SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]:${no.port}` });
  const yes = await peer();
  const r2 = await agent().deliver(job(dest(yes), ['josé@rcpt.test'], { meta: { smtputf8: true } }));
  assert.equal(r2.results.get('josé@rcpt.test')?.outcome, 'done');
  assert.ok(yes.commands.some((c) => c.startsWith('MAIL') && c.endsWith(' SMTPUTF8')));
  // requested by the client but all ASCII: not needed, sent without it
  const plain = await agent().deliver(job(dest(no), ['a@rcpt.test'], { meta: { smtputf8: true } }));
  assert.equal(plain.results.get('a@rcpt.test')?.outcome, 'done');
});

test('STARTTLS: may encrypts, verify checks chain and name, encrypt needs the offer', async () => {
  const tlsPeer = await peer({ tls: { key: cert.key, cert: cert.cert } });
  const may = await agent({ tls: () => ({ level: 'may' }) }).deliver(job(dest(tlsPeer), ['a@rcpt.test']));
  assert.equal(may.results.get('a@rcpt.test')?.outcome, 'done');
  assert.equal(tlsPeer.messages[0]!.tls, true);
  assert.equal(tlsPeer.commands.filter((c) => c.startsWith('EHLO')).length, 2, 'EHLO again after STARTTLS');

  const verified = await agent({ tls: () => ({ level: 'verify', ca: cert.cert, name: 'mx.tls.test' }) }).deliver(job(dest(tlsPeer), ['a@rcpt.test']));
  assert.equal(verified.results.get('a@rcpt.test')?.outcome, 'done');

  const wrongName = await agent({ tls: () => ({ level: 'verify', ca: cert.cert, name: 'other.test' }) }).deliver(job(dest(tlsPeer), ['a@rcpt.test']));
  assert.equal(wrongName.results.get('a@rcpt.test')?.outcome, 'deferred');
  assert.match(wrongName.results.get('a@rcpt.test')!.reason, /TLS handshake with .* failed: .*(altnames|Hostname)/i);

  const untrusted = await agent({ tls: () => ({ level: 'verify', name: 'mx.tls.test' }) }).deliver(job(dest(tlsPeer), ['a@rcpt.test']));
  assert.match(untrusted.results.get('a@rcpt.test')!.reason, /TLS handshake .* failed: .*self.signed/i);
  assert.equal(tlsPeer.messages.length, 2, 'nothing sent when verification failed');

  const plainPeer = await peer();
  const enc = await agent({ tls: () => ({ level: 'encrypt' }) }).deliver(job(dest(plainPeer), ['a@rcpt.test']));
  assert.deepEqual(enc.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]:${plainPeer.port}` });
  assert.equal(plainPeer.messages.length, 0);
});

test('STARTTLS failing under "may" falls back to plaintext on a new connection; under "encrypt" it defers', async () => {
  const p = await peer({ tls: { key: cert.key, cert: cert.cert }, brokenTls: true });
  const r = await agent({ tls: () => ({ level: 'may' }) }).deliver(job(dest(p), ['a@rcpt.test']));
  assert.equal(r.results.get('a@rcpt.test')?.outcome, 'done');
  assert.equal(p.connections, 2);
  assert.equal(p.messages[0]!.tls, false);
  const r2 = await agent({ tls: () => ({ level: 'encrypt' }) }).deliver(job(dest(p), ['a@rcpt.test']));
  assert.equal(r2.results.get('a@rcpt.test')?.outcome, 'deferred');
  assert.match(r2.results.get('a@rcpt.test')!.reason, /^TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed/);
  assert.equal(p.messages.length, 1);
});

test('AUTH PLAIN and LOGIN to a relayhost; a refused login defers', async () => {
  const p = await peer({ auth: { username: 'relay', password: 's3cret' } });
  const creds = { username: 'relay', password: 's3cret' };
  const r = await agent({ relayAuth: () => creds }).deliver(job(dest(p), ['a@rcpt.test']));
  assert.equal(r.results.get('a@rcpt.test')?.outcome, 'done');
  assert.ok(p.commands.includes(`AUTH PLAIN ${Buffer.from('\0relay\0s3cret').toString('base64')}`));

  const login = await peer({ auth: creds, capabilities: ['PIPELINING', 'AUTH LOGIN'] });
  const r2 = await agent({ relayAuth: () => creds }).deliver(job(dest(login), ['a@rcpt.test']));
  assert.equal(r2.results.get('a@rcpt.test')?.outcome, 'done');
  assert.ok(login.commands.includes('AUTH LOGIN'));

  const r3 = await agent({ relayAuth: () => ({ username: 'relay', password: 'wrong' }) }).deliver(job(dest(p), ['a@rcpt.test']));
  assert.deepEqual(r3.results.get('a@rcpt.test'), {
    outcome: 'deferred',
    reason: `SASL authentication failed; server 127.0.0.1[127.0.0.1]:${p.port} said: 535 5.7.8 Error: authentication failed`,
  });
});

test('a connection dropped mid-DATA and a silent peer defer (timeouts per phase), nothing counted as delivered', async () => {
  const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(300_000, 'x\r\n')]);
  const dropper = await peer({ dropAfterDataBytes: 1000 });
  const r = await agent().deliver(job(dest(dropper), ['a@rcpt.test'], { content: big }));
  assert.equal(r.results.get('a@rcpt.test')?.outcome, 'deferred');
  assert.match(r.results.get('a@rcpt.test')!.reason, /^lost connection with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ (while sending message body|after end of data)/);

  const silent = await peer({ silentAt: 'DATA-END' });
  const started = Date.now();
  const r2 = await agent({ timeouts: { finalMs: 300 } }).deliver(job(dest(silent), ['a@rcpt.test']));
  assert.deepEqual(r2.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `conversation with 127.0.0.1[127.0.0.1]:${silent.port} timed out after end of data` });
  assert.ok(Date.now() - started < 3000);

  const quiet = await peer({ silentAt: 'EHLO' });
  const r3 = await agent({ timeouts: { commandMs: 200 } }).deliver(job(dest(quiet), ['a@rcpt.test']));
  assert.match(r3.results.get('a@rcpt.test')!.reason, /timed out after EHLO$/);
});

test('a peer sending garbage or an endless multiline reply is cut off and deferred', async () => {
  const garbage = createServer((s) => s.end('HELLO I AM NOT SMTP\r\n'));
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  const endless = createServer((s) => {
    s.on('error', () => {});
    let n = 0;
    const spew = () => {
      while (n < 10_000 && !s.destroyed && s.write('220-more\r\n')) n++;
      if (n < 10_000 && !s.destroyed) s.once('drain', spew);
    };
    spew();
  });
  await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
  opened.push({ close: () => new Promise<void>((r) => garbage.close(() => r())) }, { close: () => new Promise<void>((r) => { endless.close(() => r()); }) });
  const port = (s: typeof garbage) => (s.address() as { port: number }).port;
  const r = await agent().deliver(job(`smtp:[127.0.0.1]:${port(garbage)}`, ['a@rcpt.test']));
  assert.match(r.results.get('a@rcpt.test')!.reason, /sent a malformed reply while receiving the initial server greeting: malformed reply line/);
  const r2 = await agent().deliver(job(`smtp:[127.0.0.1]:${port(endless)}`, ['a@rcpt.test']));
  assert.match(r2.results.get('a@rcpt.test')!.reason, /multiline reply longer than/);
  assert.equal(r2.results.get('a@rcpt.test')!.outcome, 'deferred');
});

test('the connection is reused (RSET) for the next message to the same destination; recipient limit splits transactions', async () => {
  const p = await peer();
  const a = agent({ recipientLimit: 2 });
  const r1 = await a.deliver(job(dest(p), ['a@rcpt.test']));
  const r2 = await a.deliver(job(dest(p), ['b@rcpt.test', 'c@rcpt.test', 'd@rcpt.test'], { queueId: 'QID2' }));
  assert.equal(r1.results.get('a@rcpt.test')?.outcome, 'done');
  assert.deepEqual([...r2.results.values()].map((v) => v.outcome), ['done', 'done', 'done']);
  assert.equal(p.connections, 1);
  assert.ok(p.commands.includes('RSET'));
  assert.deepEqual(p.messages.map((m) => m.to), [['a@rcpt.test'], ['b@rcpt.test', 'c@rcpt.test'], ['d@rcpt.test']]);
  await a.close();
  assert.equal(p.commands.at(-1), 'QUIT');
});

test('per-destination concurrency limit', async () => {
  const run = async (limit: number) => {
    const p = await peer({ finalDelayMs: 50 });
    const a = agent({ concurrency: () => limit, connectionCache: { maxConnections: 0 } });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => a.deliver(job(dest(p), [`r${i}@rcpt.test`], { queueId: `Q${i}` }))));
    assert.ok(results.every((r) => [...r.results.values()][0]?.outcome === 'done'));
    assert.equal(p.connections, 6);
    return p.txPeak;
  };
  assert.equal(await run(2), 2);
  assert.ok((await run(10)) > 2, 'without the limit the same load runs wider');
});

test('a dead site is suspended after N failed attempts: new jobs are deferred at once', async () => {
  const port = await freePort();
  const a = agent({ siteDown: { failures: 2, backoffMs: 60_000 } });
  const d = `smtp:[127.0.0.1]:${port}`;
  await a.deliver(job(d, ['a@rcpt.test']));
  await a.deliver(job(d, ['a@rcpt.test']));
  // now something listens there, but the site stays suspended for the backoff period
  const p = await startPeer({}, '127.0.0.1', port);
  opened.push(p);
  const r = await a.deliver(job(d, ['a@rcpt.test']));
  assert.deepEqual(r.results.get('a@rcpt.test'), { outcome: 'deferred', reason: `delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused` });
  assert.equal(p.connections, 0);
  assert.ok(a.lines.some((l) => l.status === 'site_down'));
  // another destination is not affected
  const other = await peer();
  const r2 = await a.deliver(job(dest(other), ['a@rcpt.test']));
  assert.equal(r2.results.get('a@rcpt.test')?.outcome, 'done');
});

test('a bad destination defers with the reason; a closed agent defers', async () => {
  const a = agent();
  const r = await a.deliver(job('smtp:[127.0.0.1]:99999', ['a@rcpt.test']));
  assert.equal(r.results.get('a@rcpt.test')?.outcome, 'deferred');
  assert.match(r.results.get('a@rcpt.test')!.reason, /bad SMTP destination/);
  await a.close();
  const r2 = await a.deliver(job('smtp:[127.0.0.1]:25', ['a@rcpt.test']));
  assert.match(r2.results.get('a@rcpt.test')!.reason, /shutting down/);
});

after(() => cert.cleanup());
