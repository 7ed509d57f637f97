/*
 * The MX rules end to end: our resolver asks our authoritative server on loopback, and the agent
 * delivers to scripted MXs on distinct 127.0.0.x addresses sharing one port (the configurable
 * smtp_port), with a dead best MX, equal-preference spreading, implicit MX, null MX, NXDOMAIN, a
 * broken DNS server, and the backup-MX rules (prune at our preference; loop when we are best).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAuthority, type AuthorityServer } from '../../src/dns/authority.js';
import { StubResolver } from '../../src/dns/resolver.js';
import { createSmtpAgent, type SmtpAgentOptions } from '../../src/delivery/smtp/agent.js';
import { captureLogger, job } from './helpers.js';
import { startPeer, type Peer } from './peer.js';

let dns: AuthorityServer;
let mx3: Peer;
let mx5: Peer;
let port: number;

before(async () => {
  mx3 = await startPeer({}, '127.0.0.3');
  port = mx3.port;
  mx5 = await startPeer({}, '127.0.0.5', port);
  dns = await startAuthority({
    zone: {
      // best MX on 127.0.0.2 where nothing listens
      'dead-first.test': { MX: [{ preference: 10, exchange: 'mx2.lab.test' }, { preference: 20, exchange: 'mx3.lab.test' }] },
      'spread.test': { MX: [{ preference: 10, exchange: 'mx3.lab.test' }, { preference: 10, exchange: 'mx5.lab.test' }] },
      'implicit.test': { A: ['127.0.0.3'] },
      'null.test': { MX: [{ preference: 0, exchange: '.' }] },
      'backup.test': { MX: [{ preference: 10, exchange: 'mx3.lab.test' }, { preference: 20, exchange: 'me.lab.test' }, { preference: 30, exchange: 'mx5.lab.test' }] },
      'loop.test': { MX: [{ preference: 10, exchange: 'me.lab.test' }, { preference: 20, exchange: 'mx3.lab.test' }] },
      'broken-mx.test': { MX: [{ preference: 10, exchange: 'broken.lab.test' }] },
      'mx2.lab.test': { A: ['127.0.0.2'] },
      'mx3.lab.test': { A: ['127.0.0.3'] },
      'mx5.lab.test': { A: ['127.0.0.5'] },
      'me.lab.test': { A: ['127.0.0.9'] },
    },
    faults: { 'servfail.test': 'servfail', 'broken.lab.test': 'drop' },
  });
});

after(async () => {
  await mx3.close();
  await mx5.close();
  await dns.close();
});

function agent(over: Partial<SmtpAgentOptions> = {}) {
  const { logger, lines } = captureLogger();
  const resolver = new StubResolver({ servers: [dns.server], timeoutMs: 300, retries: 0 });
  const a = createSmtpAgent({
    resolver, logger, myHostname: 'me.lab.test', myAddresses: ['127.0.0.9'], smtpPort: port, tls: () => ({ level: 'none' }),
    connectionCache: { maxConnections: 0 }, ...over,
  });
  return Object.assign(a, { lines });
}

test('the best MX is dead: the message goes to the next MX, and the log says why', async () => {
  const a = agent();
  const before = mx3.messages.length;
  const r = await a.deliver(job('smtp:dead-first.test', ['bob@dead-first.test']));
  assert.equal(r.relay, `mx3.lab.test[127.0.0.3]:${port}`);
  assert.equal(r.results.get('bob@dead-first.test')?.outcome, 'done');
  assert.equal(mx3.messages.length, before + 1);
  assert.ok(a.lines.some((l) => l.status === 'host_failed' && l.reason === `connect to mx2.lab.test[127.0.0.2]:${port}: Connection refused`));
  await a.close();
});

test('equal preferences share the load (shuffled by the injected random source)', async () => {
  // two draws per delivery (the MX hosts, then their addresses): a period of 3 keeps the order changing
  let i = 0;
  const a = agent({ random: () => [0.1, 0.9, 0.9][i++ % 3]! });
  const b3 = mx3.messages.length;
  const b5 = mx5.messages.length;
  for (let n = 0; n < 6; n++) {
    const r = await a.deliver(job('smtp:spread.test', [`u${n}@spread.test`]));
    assert.equal(r.results.get(`u${n}@spread.test`)?.outcome, 'done');
  }
  assert.ok(mx3.messages.length - b3 > 0 && mx5.messages.length - b5 > 0, `mx3 ${mx3.messages.length - b3}, mx5 ${mx5.messages.length - b5}`);
  await a.close();
});

test('no MX: the A record is the implicit MX', async () => {
  const a = agent();
  const r = await a.deliver(job('smtp:implicit.test', ['x@implicit.test']));
  assert.equal(r.relay, `implicit.test[127.0.0.3]:${port}`);
  assert.equal(r.results.get('x@implicit.test')?.outcome, 'done');
  await a.close();
});

test('null MX and NXDOMAIN fail permanently; SERVFAIL and a silent server defer', async () => {
  const a = agent();
  assert.deepEqual((await a.deliver(job('smtp:null.test', ['x@null.test']))).results.get('x@null.test'), {
    outcome: 'failed', reason: 'Domain null.test does not accept mail (nullMX)',
  });
  assert.deepEqual((await a.deliver(job('smtp:nowhere.test', ['x@nowhere.test']))).results.get('x@nowhere.test'), {
    outcome: 'failed', reason: 'Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found',
  });
  const sf = (await a.deliver(job('smtp:servfail.test', ['x@servfail.test']))).results.get('x@servfail.test');
  assert.equal(sf?.outcome, 'deferred');
  assert.match(sf!.reason, /type=MX: Host not found, try again/);
  const silent = (await a.deliver(job('smtp:broken-mx.test', ['x@broken-mx.test']))).results.get('x@broken-mx.test');
  assert.equal(silent?.outcome, 'deferred');
  assert.match(silent!.reason, /name=broken\.lab\.test type=A: .*timeout/);
  await a.close();
});

test('we are a backup MX: only better MXs are tried; when we are the best it is a loop and defers', async () => {
  const a = agent();
  const b5 = mx5.messages.length;
  const r = await a.deliver(job('smtp:backup.test', ['x@backup.test']));
  assert.equal(r.relay, `mx3.lab.test[127.0.0.3]:${port}`);
  assert.equal(mx5.messages.length, b5, 'the worse MX is never used');

  // with the better MX down, the backup defers instead of going to MXs at or above its own preference
  const down = agent({ myAddresses: ['127.0.0.9'], myNames: [] });
  await mx3.close();
  try {
    const r2 = await down.deliver(job('smtp:backup.test', ['y@backup.test']));
    assert.equal(r2.results.get('y@backup.test')?.outcome, 'deferred');
    assert.match(r2.results.get('y@backup.test')!.reason, /connect to mx3\.lab\.test\[127\.0\.0\.3\]/);
    assert.equal(mx5.messages.length, b5);
  } finally {
    mx3 = await startPeer({}, '127.0.0.3', port);
  }
  const r3 = await a.deliver(job('smtp:loop.test', ['z@loop.test']));
  assert.deepEqual(r3.results.get('z@loop.test'), { outcome: 'deferred', reason: 'mail for loop.test loops back to myself' });
  await a.close();
  await down.close();
});
