import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../net/clock.js';
import type { SmtpConnection } from './client.js';
import { ConnectionCache, DestinationSlots, SiteHealth } from './pool.js';

test('site health: suspended after N dead attempts for the backoff period; a live session resets', () => {
  const clock = new ManualClock();
  const h = new SiteHealth(clock, { failures: 2, backoffMs: 1000 });
  assert.equal(h.dead('a', 'refused 1'), false);
  assert.equal(h.down('a'), null);
  assert.equal(h.dead('a', 'refused 2'), true);
  assert.equal(h.down('a'), 'refused 2');
  assert.equal(h.down('b'), null);
  clock.advance(999);
  assert.equal(h.down('a'), 'refused 2');
  clock.advance(1);
  assert.equal(h.down('a'), null);
  h.dead('a', 'x');
  h.alive('a');
  assert.equal(h.dead('a', 'y'), false, 'the count started again');
});

test('destination slots: at most N at once per destination, others independent', async () => {
  const slots = new DestinationSlots((k) => (k === 'one' ? 1 : 3));
  let running = 0;
  let peak = 0;
  const release: (() => void)[] = [];
  const work = (k: string) =>
    slots.run(k, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => release.push(r));
      running--;
    });
  const all = [work('one'), work('one'), work('one')];
  await new Promise((r) => setImmediate(r));
  assert.equal(slots.busy('one'), 1);
  assert.equal(release.length, 1);
  const other = work('two');
  await new Promise((r) => setImmediate(r));
  assert.equal(release.length, 2);
  for (let i = 0; i < 10 && release.length > 0; i++) {
    release.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all([...all, other]);
  assert.equal(peak, 2, 'one for "one" plus one for "two"');
  assert.equal(slots.busy('one'), 0);
});

function fakeConn() {
  const c = { broken: false, quits: 0, async quit() { c.quits++; c.broken = true; } };
  return c;
}

test('connection cache: take what was put, idle ones quit after the idle time, full cache quits at once', async () => {
  const clock = new ManualClock();
  const cache = new ConnectionCache(clock, { maxConnections: 1, idleMs: 100 });
  const a = fakeConn();
  const b = fakeConn();
  cache.put('d', a as unknown as SmtpConnection);
  cache.put('d', b as unknown as SmtpConnection);
  assert.equal(b.quits, 1, 'no room');
  assert.equal(cache.take('x'), null);
  assert.equal(cache.take('d'), a);
  assert.equal(cache.size, 0);
  cache.put('d', a as unknown as SmtpConnection);
  clock.advance(100);
  assert.equal(a.quits, 1);
  assert.equal(cache.size, 0);
  assert.equal(cache.take('d'), null);
  const c = fakeConn();
  cache.put('e', c as unknown as SmtpConnection);
  c.broken = true;
  assert.equal(cache.take('e'), null, 'a connection the peer closed is dropped');
  const d = fakeConn();
  cache.put('f', d as unknown as SmtpConnection);
  await cache.closeAll();
  assert.equal(d.quits, 1);
  assert.equal(clock.pending, 0);
});
