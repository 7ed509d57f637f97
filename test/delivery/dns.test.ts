/*
 * The stub resolver against our authoritative server on loopback: data, NXDOMAIN, NODATA, TTL and
 * negative caching with a manual clock, TCP retry on truncation, and broken servers (SERVFAIL, silence,
 * garbage) that must come out as temporary, never as NXDOMAIN.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { startAuthority, type AuthorityServer } from '../../src/dns/authority.js';
import { StubResolver } from '../../src/dns/resolver.js';
import { ManualClock, systemClock, type ServerClock } from '../../src/net/clock.js';

let auth: AuthorityServer;
const many = Array.from({ length: 60 }, (_, i) => `127.0.1.${i + 1}`);

before(async () => {
  auth = await startAuthority({
    zone: {
      'example.test': { MX: [{ preference: 10, exchange: 'mx1.example.test' }, { preference: 20, exchange: 'mx2.example.test' }], ttl: 60 },
      'mx1.example.test': { A: ['127.0.0.2'], AAAA: ['::1'] },
      'nomx.test': { A: ['127.0.0.3'] },
      'big.test': { A: many },
      'alias.test': { CNAME: 'mx1.example.test' },
      'txt.test': { TXT: ['v=spf1 -all'] },
    },
    faults: { 'broken.test': 'servfail', 'silent.test': 'drop', 'garbage.test': 'garbage' },
    negativeTtl: 30,
  });
});
after(() => auth.close());

/** A clock whose "now" is manual (for TTLs) but whose timers are real (for socket timeouts). */
function cacheClock(): ServerClock & { advance(ms: number): void } {
  const m = new ManualClock();
  return { now: () => m.now(), schedule: (ms, fn) => systemClock.schedule(ms, fn), advance: (ms) => m.advance(ms) };
}

test('MX, A, AAAA, TXT and a CNAME answered by the loopback authority', async () => {
  const r = new StubResolver({ servers: [auth.server], timeoutMs: 1000, retries: 0 });
  assert.deepEqual(await r.query('Example.TEST.', 'MX'), {
    kind: 'ok', ttl: 60,
    records: [{ preference: 10, exchange: 'mx1.example.test' }, { preference: 20, exchange: 'mx2.example.test' }],
  });
  assert.deepEqual(await r.query('mx1.example.test', 'A'), { kind: 'ok', records: ['127.0.0.2'], ttl: 300 });
  assert.deepEqual(await r.query('mx1.example.test', 'AAAA'), { kind: 'ok', records: ['::1'], ttl: 300 });
  assert.deepEqual(await r.query('alias.test', 'A'), { kind: 'ok', records: ['127.0.0.2'], ttl: 300 });
  assert.deepEqual(await r.query('txt.test', 'TXT'), { kind: 'ok', records: ['v=spf1 -all'], ttl: 300 });
  assert.deepEqual(await r.query('nothere.test', 'MX'), { kind: 'nxdomain', ttl: 30 });
  assert.deepEqual(await r.query('nomx.test', 'MX'), { kind: 'nodata', ttl: 30 });
});

test('answers are cached for their TTL, NXDOMAIN for the negative TTL; concurrent queries share one', async () => {
  const clock = cacheClock();
  const r = new StubResolver({ servers: [auth.server], timeoutMs: 1000, retries: 0, clock });
  const count = (name: string) => auth.queries.filter((q) => q.name === name).length;
  const base = count('example.test');
  await Promise.all([r.query('example.test', 'MX'), r.query('example.test', 'MX'), r.query('EXAMPLE.test', 'MX')]);
  assert.equal(count('example.test'), base + 1);
  clock.advance(59_000);
  await r.query('example.test', 'MX');
  assert.equal(count('example.test'), base + 1);
  clock.advance(1_000);
  await r.query('example.test', 'MX');
  assert.equal(count('example.test'), base + 2);

  const nxBase = count('gone.test');
  await r.query('gone.test', 'A');
  clock.advance(29_000);
  assert.equal((await r.query('gone.test', 'A')).kind, 'nxdomain');
  assert.equal(count('gone.test'), nxBase + 1);
  clock.advance(1_000);
  await r.query('gone.test', 'A');
  assert.equal(count('gone.test'), nxBase + 2);
});

test('a truncated UDP answer is asked again over TCP', async () => {
  const r = new StubResolver({ servers: [auth.server], timeoutMs: 1000, retries: 0 });
  const result = await r.query('big.test', 'A');
  assert.equal(result.kind, 'ok');
  assert.deepEqual(result.kind === 'ok' ? [...result.records].sort() : [], [...many].sort());
  assert.deepEqual(auth.queries.filter((q) => q.name === 'big.test').map((q) => q.tcp), [false, true]);
});

test('SERVFAIL, silence and garbage are temporary (never NXDOMAIN) and not cached', async () => {
  const r = new StubResolver({ servers: [auth.server], timeoutMs: 200, retries: 1 });
  for (const name of ['broken.test', 'silent.test', 'garbage.test']) {
    const started = Date.now();
    const result = await r.query(name, 'MX');
    assert.equal(result.kind, 'temporary', name);
    assert.ok(Date.now() - started < 2000);
  }
  const before = auth.queries.filter((q) => q.name === 'broken.test').length;
  assert.equal(before, 2, 'one try plus one retry');
  await r.query('broken.test', 'MX');
  assert.equal(auth.queries.filter((q) => q.name === 'broken.test').length, 4);
});

test('a dead first server is skipped for the next one; no server at all is temporary', async () => {
  const dead = createSocket('udp4');
  await new Promise<void>((resolve) => dead.bind(0, '127.0.0.1', resolve));
  const deadServer = `127.0.0.1:${dead.address().port}`;
  try {
    const r = new StubResolver({ servers: [deadServer, auth.server], timeoutMs: 200, retries: 0 });
    assert.deepEqual(await r.query('nomx.test', 'A'), { kind: 'ok', records: ['127.0.0.3'], ttl: 300 });
    const none = new StubResolver({ servers: [deadServer], timeoutMs: 100, retries: 1 });
    const result = await none.query('nomx.test', 'A');
    assert.equal(result.kind, 'temporary');
    assert.match(result.kind === 'temporary' ? result.reason : '', /timeout/);
  } finally {
    dead.close();
  }
});

test('invalid names are refused locally as temporary', async () => {
  const r = new StubResolver({ servers: [auth.server], timeoutMs: 200, retries: 0 });
  assert.equal((await r.query('a..b', 'A')).kind, 'temporary');
  assert.equal((await r.query(`${'x'.repeat(64)}.test`, 'A')).kind, 'temporary');
});
