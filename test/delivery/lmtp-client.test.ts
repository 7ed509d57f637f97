/*
 * The delivery agent's LMTP destinations (RFC 2033) against real servers: Cartero's own LMTP server on
 * loopback TCP with an embedded store in a temporary directory (per-recipient outcomes, mailbox filing,
 * exactly once across a resend, including one after a connection lost between the end of data and the
 * replies), and a scripted LMTP peer on a Unix socket for the mixes, drops, silences, reuse, batching
 * and broken replies a real server will not produce on demand.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, afterEach, before, test } from 'node:test';
import { startMailServices } from '../../src/cli/serve-mail.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import type { Resolver } from '../../src/dns/types.js';
import { createSmtpAgent, type SmtpAgentOptions } from '../../src/delivery/smtp/agent.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { openTestStore, type TestStore } from '../../src/queue/testing.js';
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.js';
import { testConfig } from '../smtp/env.js';
import { captureLogger, job } from './helpers.js';
import { startLmtpPeer, type LmtpPeer, type LmtpScript } from './lmtp-peer.js';

const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'no DNS in this test' }) };
const opened: { close(): Promise<void> }[] = [];

let ts: TestStore;
let server: SmtpServer;
let listeners: Listeners;
let port = 0;

before(async () => {
  ts = await openTestStore('cartero-lmtp-client-');
  const store = ts.store;
  const config = testConfig();
  const { logger } = captureLogger();
  await store.directory.addDomain('example.test');
  for (const a of ['alice', 'bob', 'carol', 'dave']) await provisionAccount(store, `${a}@example.test`, null);
  // bob is over his 10-byte quota: his copy is 452, nobody else's
  const bob = (await store.directory.getAccount('bob@example.test'))!;
  const bobInbox = (await store.mailboxes.get(bob.id, 'INBOX'))!;
  await store.messages.append(bobInbox.id, { content: Buffer.from('Subject: x\r\n\r\nfill the quota\r\n') }, Date.now());
  await store.directory.setQuota('bob@example.test', 10);
  const mail = await startMailServices({ config, store, logger });
  server = createSmtpServer({ config, services: mail.lmtpServices, logger, protocol: 'lmtp' });
  listeners = await startListeners([{ proto: 'lmtp', address: '127.0.0.1', port: 0, handler: server.handler({ key: 'lmtp', submission: false }) }]);
  port = listeners.bound[0]!.port;
});

after(async () => {
  await Promise.all([server.drain(1000), listeners.close(1000)]);
  await ts.cleanup();
});

afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

function agent(over: Partial<SmtpAgentOptions> = {}) {
  const { logger, lines } = captureLogger();
  const a = createSmtpAgent({ resolver: noDns, logger, myHostname: 'client.test', myAddresses: [], smtpPort: 25, tls: () => ({ level: 'none' }), ...over });
  opened.push(a);
  return Object.assign(a, { lines });
}

async function peer(script: LmtpScript = {}): Promise<LmtpPeer> {
  const p = await startLmtpPeer(script);
  opened.push(p);
  return p;
}

async function inbox(address: string): Promise<string[]> {
  const store = ts.store;
  const account = (await store.directory.getAccount(address))!;
  const box = (await store.mailboxes.get(account.id, 'INBOX'))!;
  const out: string[] = [];
  for (const m of await store.messages.list(box.id)) out.push((await store.messages.content(box.id, m.uid)).toString('latin1'));
  return out;
}

const content = (subject: string) => Buffer.from(`From: alice@sender.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@sender.test>\r\n\r\nHello ${subject}.\r\n`);

const outcomes = (r: { results: Map<string, { outcome: string }> }) => Object.fromEntries([...r.results].map(([k, v]) => [k, v.outcome]));

// --- Cartero's own LMTP server, loopback TCP ---

test('Cartero LMTP server: one outcome per recipient, filed in the mailbox, handoff "mailbox"', async () => {
  const a = agent();
  const j = job(`lmtp:[127.0.0.1]:${port}`, ['alice@example.test', 'bob@example.test', 'nobody@example.test', 'carol@example.test'], { content: content('mix-real'), queueId: 'Qmix-real' });
  j.recipients[0]!.notify = ['SUCCESS'];
  const before = { alice: (await inbox('alice@example.test')).length, carol: (await inbox('carol@example.test')).length };
  const r = await a.deliver(j);
  assert.deepEqual(outcomes(r), { 'alice@example.test': 'done', 'bob@example.test': 'deferred', 'nobody@example.test': 'failed', 'carol@example.test': 'done' });
  assert.equal(r.relay, `127.0.0.1[127.0.0.1]:${port}`);
  assert.match(r.results.get('alice@example.test')!.reason, /^250 2\.0\.0 <alice@example\.test> Ok/);
  assert.match(r.results.get('bob@example.test')!.reason, /^host 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ said: 452 4\.2\.2 .*\(in reply to end of DATA command\)$/);
  assert.match(r.results.get('nobody@example.test')!.reason, /said: 550 5\.1\.1 .*\(in reply to RCPT TO command\)$/);
  // LMTP is final delivery: NOTIFY=SUCCESS is owed an "Action: delivered" DSN by us
  assert.deepEqual([...r.handoff], [['alice@example.test', 'mailbox'], ['carol@example.test', 'mailbox']]);
  const alice = await inbox('alice@example.test');
  assert.equal(alice.length, before.alice + 1);
  assert.ok(alice.at(-1)!.endsWith(j.content.toString('latin1')), 'the bytes arrive unchanged after the trace headers');
  assert.match(alice.at(-1)!, /with LMTP id/);
  assert.equal((await inbox('carol@example.test')).length, before.carol + 1);
});

test('Cartero LMTP server: the same job delivered twice files one copy', async () => {
  const a = agent();
  const j = job(`lmtp:[127.0.0.1]:${port}`, ['dave@example.test'], { content: content('twice'), queueId: 'Qtwice' });
  const before = (await inbox('dave@example.test')).length;
  const first = await a.deliver(j);
  const second = await a.deliver({ ...j, now: j.now + 60_000 });
  assert.equal(first.results.get('dave@example.test')?.outcome, 'done');
  assert.equal(second.results.get('dave@example.test')?.outcome, 'done');
  const filed = await inbox('dave@example.test');
  assert.equal(filed.length, before + 1);
  assert.equal(filed.filter((t) => t.includes('Subject: twice\r\n')).length, 1);
});

/** A TCP proxy to the LMTP server that hangs up on the client right after forwarding its end of data. */
async function crashingProxy(target: number): Promise<{ port: number; answered: Promise<string>; close(): Promise<void> }> {
  let answered!: (s: string) => void;
  const done = new Promise<string>((resolve) => (answered = resolve));
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    let cut = false;
    let after = '';
    upstream.on('data', (d: Buffer) => {
      if (!cut) client.write(d);
      else {
        after += d.toString('latin1');
        if (/\r\n$/.test(after)) {
          answered(after);
          upstream.destroy();
        }
      }
    });
    client.on('data', (d: Buffer) => {
      upstream.write(d);
      if (d.includes('\r\n.\r\n')) {
        cut = true;
        client.destroy();
      }
    });
    for (const s of [client, upstream]) s.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    answered: done,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

test('Cartero LMTP server: a connection lost between the end of data and the replies, then a resend: one copy', async () => {
  const proxy = await crashingProxy(port);
  opened.push(proxy);
  const a = agent({ connectionCache: { maxConnections: 0 } });
  const j = job(`lmtp:[127.0.0.1]:${proxy.port}`, ['carol@example.test'], { content: content('crash-resend'), queueId: 'Qcrash-resend' });
  const before = (await inbox('carol@example.test')).length;
  const first = await a.deliver(j);
  assert.equal(first.results.get('carol@example.test')?.outcome, 'deferred', 'a reply we did not read is never "done"');
  assert.match(first.results.get('carol@example.test')!.reason, /lost connection with .* after end of data/);
  assert.equal(first.handoff.size, 0);
  // the backend did deliver (its 250 went nowhere)
  assert.match(await proxy.answered, /^250 /);
  assert.equal((await inbox('carol@example.test')).length, before + 1);
  const retry = await a.deliver({ ...j, destination: `lmtp:[127.0.0.1]:${port}` });
  assert.equal(retry.results.get('carol@example.test')?.outcome, 'done');
  const filed = await inbox('carol@example.test');
  assert.equal(filed.length, before + 1);
  assert.equal(filed.filter((t) => t.includes('Subject: crash-resend\r\n')).length, 1);
});

test('lmtp:host:port looks up A/AAAA only (no MX) and delivers to Cartero', async () => {
  const queries: string[] = [];
  const resolver: Resolver = {
    query: async (name, type) => {
      queries.push(`${type} ${name}`);
      if (type === 'A' && name === 'mailstore.test') return { kind: 'ok', records: ['127.0.0.1'], ttl: 60 } as never;
      return { kind: 'nodata', ttl: 60 };
    },
  };
  const a = agent({ resolver });
  const r = await a.deliver(job(`lmtp:mailstore.test:${port}`, ['alice@example.test'], { content: content('by-name'), queueId: 'Qby-name' }));
  assert.equal(r.results.get('alice@example.test')?.outcome, 'done', r.results.get('alice@example.test')?.reason);
  assert.equal(r.relay, `mailstore.test[127.0.0.1]:${port}`);
  assert.deepEqual(queries.sort(), ['A mailstore.test', 'AAAA mailstore.test']);
});

// --- scripted LMTP peer on a Unix socket ---

test('Unix socket: LHLO, pipelined envelope, per-recipient 250/452/550 after the end of data', async () => {
  const p = await peer({
    rcpt: (to) => (to.startsWith('refused') ? '550 5.1.1 no such user' : '250 2.1.5 Ok'),
    final: (to) => (to.startsWith('full') ? '452 4.2.2 Mailbox full' : to.startsWith('gone') ? '550 5.2.1 Mailbox disabled' : `250 2.0.0 <${to}> saved`),
  });
  const a = agent();
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, ['ann@b.test', 'full@b.test', 'refused@b.test', 'gone@b.test', 'zed@b.test']));
  assert.deepEqual(outcomes(r), { 'ann@b.test': 'done', 'full@b.test': 'deferred', 'refused@b.test': 'failed', 'gone@b.test': 'failed', 'zed@b.test': 'done' });
  assert.equal(r.relay, `localhost[${p.path}]`);
  assert.equal(r.results.get('ann@b.test')!.reason, '250 2.0.0 <ann@b.test> saved');
  assert.equal(r.results.get('full@b.test')!.reason, `host localhost[${p.path}] said: 452 4.2.2 Mailbox full (in reply to end of DATA command)`);
  assert.equal(r.results.get('refused@b.test')!.reason, `host localhost[${p.path}] said: 550 5.1.1 no such user (in reply to RCPT TO command)`);
  assert.deepEqual([...r.handoff.keys()], ['ann@b.test', 'zed@b.test']);
  assert.equal(p.commands[0], 'LHLO client.test');
  assert.ok(!p.commands.some((c) => /^(EHLO|HELO)/.test(c)));
  assert.ok(p.chunks.some((c) => /^MAIL FROM:.*\r\n(RCPT TO:.*\r\n){5}DATA\r\n$/s.test(c)), 'MAIL, RCPTs and DATA in one write');
  assert.equal(p.transactions.length, 1);
  assert.deepEqual(p.transactions[0]!.to, ['ann@b.test', 'full@b.test', 'gone@b.test', 'zed@b.test']);
  assert.equal(p.transactions[0]!.answered.length, 4);
});

test('a peer that hangs up after the first of three replies: that one done, the others deferred', async () => {
  const p = await peer({ dropAfterFinals: 1 });
  const a = agent();
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, ['one@b.test', 'two@b.test', 'three@b.test']));
  assert.deepEqual(outcomes(r), { 'one@b.test': 'done', 'two@b.test': 'deferred', 'three@b.test': 'deferred' });
  assert.match(r.results.get('two@b.test')!.reason, /^lost connection with localhost\[.*\] after end of data/);
  assert.deepEqual([...r.handoff.keys()], ['one@b.test']);
  assert.equal(r.relay, `localhost[${p.path}]`);
  // the broken connection is not reused: the next job opens a new one
  const again = await a.deliver(job(`lmtp:unix:${p.path}`, ['four@b.test']));
  assert.equal(again.results.get('four@b.test')?.outcome, 'done');
  assert.equal(p.connections, 2);
});

test('a peer that goes silent after the first reply: timed out, the rest deferred', async () => {
  const p = await peer({ silentAfterFinals: 1 });
  const a = agent({ timeouts: { finalMs: 300 } });
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, ['one@b.test', 'two@b.test']));
  assert.deepEqual(outcomes(r), { 'one@b.test': 'done', 'two@b.test': 'deferred' });
  assert.match(r.results.get('two@b.test')!.reason, /timed out after end of data/);
});

test('one connection for several messages, RSET between them', async () => {
  const p = await peer();
  const a = agent();
  for (let i = 0; i < 3; i++) {
    const r = await a.deliver(job(`lmtp:unix:${p.path}`, [`u${i}@b.test`], { queueId: `Q${i}`, content: content(`reuse${i}`) }));
    assert.equal(r.results.get(`u${i}@b.test`)?.outcome, 'done');
  }
  assert.equal(p.connections, 1);
  assert.equal(p.transactions.length, 3);
  assert.equal(p.commands.filter((c) => c === 'RSET').length, 2);
  assert.equal(p.commands.filter((c) => c.startsWith('LHLO')).length, 1);
  assert.match(p.transactions[2]!.data.toString(), /Subject: reuse2/);
});

test('recipient batching: lmtpRecipientLimit 2 splits 5 recipients into 2+2+1 on one connection', async () => {
  const p = await peer();
  const a = agent({ lmtpRecipientLimit: 2, recipientLimit: 50 });
  const rcpts = ['a@b.test', 'b@b.test', 'c@b.test', 'd@b.test', 'e@b.test'];
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, rcpts));
  assert.deepEqual(Object.values(outcomes(r)), ['done', 'done', 'done', 'done', 'done']);
  assert.deepEqual(p.transactions.map((t) => t.to), [['a@b.test', 'b@b.test'], ['c@b.test', 'd@b.test'], ['e@b.test']]);
  assert.equal(p.connections, 1);
});

test('a peer that sends one reply too many: the connection is not reused', async () => {
  const p = await peer({ extraReply: true });
  const a = agent();
  const first = await a.deliver(job(`lmtp:unix:${p.path}`, ['a@b.test']));
  assert.equal(first.results.get('a@b.test')?.outcome, 'done');
  await new Promise((r) => setTimeout(r, 50));
  const second = await a.deliver(job(`lmtp:unix:${p.path}`, ['b@b.test']));
  assert.equal(second.results.get('b@b.test')?.outcome, 'done');
  assert.equal(p.connections, 2);
  assert.ok(!p.commands.includes('RSET'), 'no RSET on a connection whose replies are out of step');
});

test('LHLO refused: no HELO/EHLO fallback, deferred with the reply', async () => {
  const p = await peer({ lhloReply: '500 5.5.1 go away' });
  const a = agent();
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, ['a@b.test']));
  assert.equal(r.results.get('a@b.test')?.outcome, 'deferred');
  assert.match(r.results.get('a@b.test')!.reason, /said: 500 5\.5\.1 go away \(in reply to LHLO command\)/);
  assert.ok(!p.commands.some((c) => /^(EHLO|HELO)/.test(c)));
  assert.equal(p.transactions.length, 0);
});

test('SIZE and SMTPUTF8 rules apply to LMTP peers', async () => {
  const p = await peer({ capabilities: ['PIPELINING', 'SIZE 100'] });
  const a = agent();
  const big = await a.deliver(job(`lmtp:unix:${p.path}`, ['a@b.test'], { content: Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(200)}\r\n`) }));
  assert.equal(big.results.get('a@b.test')?.outcome, 'failed');
  assert.match(big.results.get('a@b.test')!.reason, /exceeds size limit 100/);
  const utf8 = await a.deliver(job(`lmtp:unix:${p.path}`, ['jos\u00e9@b.test']));
  assert.equal(utf8.results.get('jos\u00e9@b.test')?.outcome, 'failed');
  assert.match(utf8.results.get('jos\u00e9@b.test')!.reason, /SMTPUTF8 is required/);
  assert.equal(p.transactions.length, 0);
});

test('TLS required but not offered by the LMTP peer: deferred, nothing sent', async () => {
  const p = await peer();
  const a = agent({ tls: () => ({ level: 'encrypt' }) });
  const r = await a.deliver(job(`lmtp:unix:${p.path}`, ['a@b.test']));
  assert.equal(r.results.get('a@b.test')?.outcome, 'deferred');
  assert.match(r.results.get('a@b.test')!.reason, /TLS is required, but was not offered by host localhost\[/);
  assert.ok(!p.commands.some((c) => c.startsWith('MAIL')));
});

test('DSN peer: NOTIFY passed on without SUCCESS (we report final delivery), NEVER when nothing is left', async () => {
  const p = await peer({ capabilities: ['PIPELINING', 'DSN'] });
  const a = agent();
  const j = job(`lmtp:unix:${p.path}`, ['a@b.test', 'b@b.test', 'c@b.test']);
  j.recipients[0]!.notify = ['SUCCESS', 'FAILURE'];
  j.recipients[1]!.notify = ['SUCCESS'];
  j.recipients[2]!.orcpt = 'rfc822;c@b.test';
  const r = await a.deliver(j);
  assert.deepEqual([...r.handoff.values()], ['mailbox', 'mailbox', 'mailbox']);
  assert.ok(p.commands.includes('RCPT TO:<a@b.test> NOTIFY=FAILURE'), p.commands.join('|'));
  assert.ok(p.commands.includes('RCPT TO:<b@b.test> NOTIFY=NEVER'));
  assert.ok(p.commands.includes('RCPT TO:<c@b.test> ORCPT=rfc822;c@b.test'));
});

test('missing socket: deferred with the reason; a bad destination: deferred, nothing tried', async () => {
  const a = agent();
  const r = await a.deliver(job('lmtp:unix:/nonexistent/cartero-test/lmtp.sock', ['a@b.test']));
  assert.equal(r.results.get('a@b.test')?.outcome, 'deferred');
  assert.equal(r.results.get('a@b.test')!.reason, 'connect to localhost[/nonexistent/cartero-test/lmtp.sock]: No such file or directory');
  for (const bad of ['lmtp:unix:relative/sock', `lmtp:unix:/${'x'.repeat(200)}`, 'lmtp:unix:/tmp/a\r\nRCPT', 'lmtp:', 'lmtp:[127.0.0.1]:99999', 'lmtp:smtp:host']) {
    const b = await a.deliver(job(bad, ['a@b.test']));
    assert.equal(b.results.get('a@b.test')?.outcome, 'deferred', bad);
    assert.match(b.results.get('a@b.test')!.reason, /^bad LMTP destination/, bad);
  }
});
