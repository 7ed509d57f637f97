import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DnsCache } from './cache.js';

test('positive answers live for their TTL, capped; temporary failures are never kept', () => {
  let now = 1_000_000;
  const c = new DnsCache(() => now, { maxTtlS: 100 });
  c.put('A x', { kind: 'ok', records: ['1'], ttl: 30 });
  c.put('A y', { kind: 'ok', records: ['2'], ttl: 100_000 });
  c.put('A z', { kind: 'temporary', reason: 'timeout' });
  assert.equal(c.get('A z'), null);
  now += 29_999;
  assert.equal(c.get('A x')?.kind, 'ok');
  now += 1;
  assert.equal(c.get('A x'), null);
  now += 69_999;
  assert.equal(c.get('A y')?.kind, 'ok');
  now += 1;
  assert.equal(c.get('A y'), null);
});

test('negative answers use the negative cap; TTL 0 is not cached', () => {
  let now = 0;
  const c = new DnsCache(() => now, { maxNegativeTtlS: 10 });
  c.put('MX a', { kind: 'nxdomain', ttl: 3600 });
  c.put('MX b', { kind: 'nodata', ttl: 0 });
  assert.equal(c.get('MX b'), null);
  now = 9_999;
  assert.equal(c.get('MX a')?.kind, 'nxdomain');
  now = 10_000;
  assert.equal(c.get('MX a'), null);
});

test('size is bounded: the oldest entry goes first', () => {
  const c = new DnsCache(() => 0, { maxEntries: 2 });
  c.put('1', { kind: 'ok', records: [], ttl: 10 });
  c.put('2', { kind: 'ok', records: [], ttl: 10 });
  c.put('3', { kind: 'ok', records: [], ttl: 10 });
  assert.equal(c.size, 2);
  assert.equal(c.get('1'), null);
  assert.ok(c.get('3'));
});
