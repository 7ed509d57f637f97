import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DnsResult } from '../../dns/types.js';
import { deliveryTargets, literalTarget, mxHosts, orderByPreference, parseDestination, relayName, type ResolvedHost } from './mx.js';

const ok = <T>(records: T[]): DnsResult<T> => ({ kind: 'ok', records, ttl: 60 });
const nodata: DnsResult<never> = { kind: 'nodata', ttl: 60 };
const nx: DnsResult<never> = { kind: 'nxdomain', ttl: 60 };
const temp: DnsResult<never> = { kind: 'temporary', reason: 'timeout' };
const first = () => 0;
const host = (name: string, preference: number, a: string[], aaaa: string[] = []): ResolvedHost => ({
  name, preference, a: a.length ? ok(a) : nodata, aaaa: aaaa.length ? ok(aaaa) : nodata,
});
const self = { names: ['mx.me.test'], addresses: ['127.0.0.9'] };

test('destinations: MX forms and [host] forms, with and without smtp: and ports', () => {
  assert.deepEqual(parseDestination('smtp:Example.ORG', 25), { kind: 'mx', domain: 'example.org', port: 25 });
  assert.deepEqual(parseDestination('smtp:example.org:2525', 25), { kind: 'mx', domain: 'example.org', port: 2525 });
  assert.deepEqual(parseDestination('smtp:[127.0.0.5]:2525', 25), { kind: 'host', host: '127.0.0.5', port: 2525 });
  assert.deepEqual(parseDestination('[mx.example.org]', 25), { kind: 'host', host: 'mx.example.org', port: 25 });
  assert.deepEqual(parseDestination('smtp:[::1]:26', 25), { kind: 'host', host: '::1', port: 26 });
  assert.deepEqual(parseDestination('smtp:[IPv6:::1]', 25), { kind: 'host', host: '::1', port: 25 });
  for (const bad of ['smtp:', 'smtp:[127.0.0.5]:0', 'smtp:[x]:70000', 'smtp:a b', 'smtp:[]', 'smtp:exa$mple.org', 'smtp:a:b:c', 'smtp:[host]:x', `smtp:${'a'.repeat(64)}.org`]) {
    assert.equal(parseDestination(bad, 25).kind, 'invalid', bad);
  }
});

test('LMTP destinations: [host]:port, host:port (never MX), inet:, unix:/path, default port 24', () => {
  assert.deepEqual(parseDestination('lmtp:[10.0.0.5]:2424', 25), { kind: 'lmtp', host: '10.0.0.5', port: 2424 });
  assert.deepEqual(parseDestination('lmtp:[Mailstore.Example]', 25), { kind: 'lmtp', host: 'mailstore.example', port: 24 });
  assert.deepEqual(parseDestination('LMTP:mailstore.example:2424', 25), { kind: 'lmtp', host: 'mailstore.example', port: 2424 });
  assert.deepEqual(parseDestination('lmtp:mailstore.example', 25, 2003), { kind: 'lmtp', host: 'mailstore.example', port: 2003 });
  assert.deepEqual(parseDestination('lmtp:inet:[::1]:24', 25), { kind: 'lmtp', host: '::1', port: 24 });
  assert.deepEqual(parseDestination('lmtp:unix:/run/cartero/lmtp', 25), { kind: 'lmtp-unix', path: '/run/cartero/lmtp' });
  assert.deepEqual(literalTarget({ kind: 'lmtp-unix', path: '/run/l' }), { host: 'localhost', address: '/run/l', port: 0, preference: 0, path: '/run/l' });
  assert.deepEqual(literalTarget({ kind: 'lmtp', host: '::1', port: 24 }), { host: '::1', address: '::1', port: 24, preference: 0 });
  assert.equal(literalTarget({ kind: 'lmtp', host: 'mailstore.example', port: 24 }), null);
  assert.equal(relayName({ host: 'localhost', address: '/run/l', port: 0, path: '/run/l' }), 'localhost[/run/l]');
  const bad = [
    'lmtp:', 'lmtp:inet:', 'lmtp:unix:', 'lmtp:unix:relative/path', 'lmtp:unix:/a\0b', 'lmtp:unix:/a\r\nRSET', `lmtp:unix:/${'a'.repeat(107)}`,
    'lmtp:[10.0.0.5]:0', 'lmtp:[x]:70000', 'lmtp:a b', 'lmtp:a:b:c', 'lmtp:smtp:host', 'lmtp:lmtp:host', 'lmtp:exa$mple.org',
  ];
  for (const b of bad) {
    const d = parseDestination(b, 25);
    assert.equal(d.kind, 'invalid', b);
    assert.match((d as { reason: string }).reason, /^bad LMTP destination "[^\r\n\0]*": \S/, b);
  }
  // the longest path sun_path takes
  assert.equal(parseDestination(`lmtp:unix:/${'a'.repeat(106)}`, 25).kind, 'lmtp-unix');
});

test('NXDOMAIN → permanent; temporary DNS trouble → temporary', () => {
  const n = mxHosts('gone.test', nx, first);
  assert.deepEqual(n, { kind: 'permanent', reason: 'Host or domain name not found. Name service error for name=gone.test type=MX: Host not found' });
  assert.equal(mxHosts('x.test', temp, first).kind, 'temporary');
});

test('no MX → the domain itself is the implicit MX', () => {
  assert.deepEqual(mxHosts('plain.test', nodata, first), { kind: 'hosts', hosts: [{ name: 'plain.test', preference: 0 }], implicit: true });
});

test('null MX (0 .) → permanent; a stray "." among real MXs is ignored', () => {
  assert.deepEqual(mxHosts('null.test', ok([{ preference: 0, exchange: '' }]), first), { kind: 'permanent', reason: 'Domain null.test does not accept mail (nullMX)' });
  const mixed = mxHosts('m.test', ok([{ preference: 0, exchange: '' }, { preference: 10, exchange: 'mx.m.test' }]), first);
  assert.deepEqual(mixed, { kind: 'hosts', hosts: [{ name: 'mx.m.test', preference: 10 }], implicit: false });
});

test('sorted by preference; equal preferences shuffled by the random source, others never', () => {
  const recs = ok([
    { preference: 20, exchange: 'c' }, { preference: 10, exchange: 'a1' }, { preference: 10, exchange: 'a2' }, { preference: 10, exchange: 'a3' }, { preference: 5, exchange: 'z' },
  ]);
  const names = (r: () => number) => {
    const s = mxHosts('d.test', recs, r);
    return s.kind === 'hosts' ? s.hosts.map((h) => h.name) : [];
  };
  assert.deepEqual(names(() => 0.999), ['z', 'a1', 'a2', 'a3', 'c']);
  const seen = new Set<string>();
  let x = 0;
  for (let i = 0; i < 50; i++) {
    const order = names(() => ((x = (x * 7 + 3) % 11) / 11));
    assert.equal(order[0], 'z');
    assert.equal(order[4], 'c');
    seen.add(order.slice(1, 4).join(','));
  }
  assert.ok(seen.size > 1, 'equal-preference hosts come out in more than one order');
  assert.deepEqual(orderByPreference([], first), []);
});

test('every address of every host, in host order, IPv4 then IPv6', () => {
  const r = deliveryTargets('d.test', [host('mx1', 10, ['127.0.0.2', '127.0.0.3'], ['::1']), host('mx2', 20, ['127.0.0.4'])], 2525, self);
  assert.deepEqual(r.kind === 'targets' ? r.targets.map(relayName) : r, ['mx1[127.0.0.2]:2525', 'mx1[127.0.0.3]:2525', 'mx1[::1]:2525', 'mx2[127.0.0.4]:2525']);
});

test('with a random source, addresses of equal preference are shuffled together (smtp_randomize_addresses), never across preferences', () => {
  const hosts = [host('pool', 10, ['127.0.0.11', '127.0.0.12', '127.0.0.13']), host('mx2', 20, ['127.0.0.4', '127.0.0.5'])];
  const firsts = new Map<string, number>();
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 300; i++) {
    const r = deliveryTargets('d.test', hosts, 25, self, random);
    assert.equal(r.kind, 'targets');
    if (r.kind !== 'targets') return;
    assert.deepEqual(new Set(r.targets.slice(0, 3).map((t) => t.address)), new Set(['127.0.0.11', '127.0.0.12', '127.0.0.13']));
    assert.deepEqual(new Set(r.targets.slice(3).map((t) => t.address)), new Set(['127.0.0.4', '127.0.0.5']));
    firsts.set(r.targets[0]!.address, (firsts.get(r.targets[0]!.address) ?? 0) + 1);
  }
  // every pool member comes first about a third of the time
  for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) assert.ok((firsts.get(a) ?? 0) > 60, `${a} first ${firsts.get(a) ?? 0} times of 300`);
});

test('we are a backup MX: every MX with preference ≥ ours is dropped (by name or by address)', () => {
  const byName = deliveryTargets('d.test', [host('mx1', 10, ['127.0.0.2']), host('mx.me.test', 20, ['127.0.0.8']), host('mx3', 20, ['127.0.0.3']), host('mx4', 30, ['127.0.0.4'])], 25, self);
  assert.deepEqual(byName.kind === 'targets' ? byName.targets.map((t) => t.host) : byName, ['mx1']);
  const byAddr = deliveryTargets('d.test', [host('mx1', 10, ['127.0.0.2']), host('backup', 20, ['127.0.0.9'])], 25, self);
  assert.deepEqual(byAddr.kind === 'targets' ? byAddr.targets.map((t) => t.host) : byAddr, ['mx1']);
});

test('we are the best MX → defer "mail for X loops back to myself"; also for an implicit MX that is us', () => {
  const r = deliveryTargets('d.test', [host('mx.me.test', 10, ['127.0.0.9']), host('mx2', 10, ['127.0.0.2']), host('mx3', 20, ['127.0.0.3'])], 25, self);
  assert.deepEqual(r, { kind: 'temporary', reason: 'mail for d.test loops back to myself' });
  assert.equal(deliveryTargets('me.test', [host('me.test', 0, ['127.0.0.9'])], 25, self).kind, 'temporary');
  // no loop check for [host] destinations
  assert.equal(deliveryTargets('me.test', [host('me.test', 0, ['127.0.0.9'])], 25, null).kind, 'targets');
});

test('hosts without addresses are skipped; none left → permanent when DNS said so, temporary otherwise', () => {
  const some = deliveryTargets('d.test', [{ name: 'mx1', preference: 10, a: nx, aaaa: nx }, host('mx2', 20, ['127.0.0.2'])], 25, self);
  assert.deepEqual(some.kind === 'targets' ? some.targets.map((t) => t.host) : some, ['mx2']);
  const none = deliveryTargets('d.test', [{ name: 'mx1', preference: 10, a: nodata, aaaa: nodata }], 25, self);
  assert.deepEqual(none, { kind: 'permanent', reason: 'Host or domain name not found. Name service error for name=mx1 type=A: Host found but no data record of requested type' });
  const temporary = deliveryTargets('d.test', [{ name: 'mx1', preference: 10, a: nx, aaaa: nx }, { name: 'mx2', preference: 10, a: nodata, aaaa: temp }], 25, self);
  assert.equal(temporary.kind, 'temporary');
});

test('an IP literal destination needs no DNS', () => {
  assert.deepEqual(literalTarget({ kind: 'host', host: '127.0.0.5', port: 2525 }), { host: '127.0.0.5', address: '127.0.0.5', port: 2525, preference: 0 });
  assert.equal(literalTarget({ kind: 'host', host: 'mx.test', port: 25 }), null);
  assert.equal(literalTarget({ kind: 'mx', domain: 'x.test', port: 25 }), null);
});
