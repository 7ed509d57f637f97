/*
 * Unit tests of the cluster slot gate (destination-slots.ts) on a fake slot store, and of the SMTP
 * agent's per-destination limiter (pool.ts) with a gate: waiting in line with one poller per
 * destination, a freed slot waking the line, giving up after waitMs, a database error, renewals.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DestinationSlots } from '../delivery/smtp/pool.js';
import { ManualClock } from '../net/clock.js';
import { captureLogger } from '../queue/testing.js';
import type { DestinationSlotStore } from '../store/api.js';
import { StoreError } from '../store/errors.js';
import { ClusterSlotGate, isSlotHold, type SharedSlotGate, type SlotOutcome } from './destination-slots.js';

/** Slots in memory, with leases on the given clock; counts the calls. */
class FakeSlots implements DestinationSlotStore {
  readonly rows = new Map<string, { holder: string; expires: number }>();
  acquires = 0;
  renewals = 0;
  failing = false;
  constructor(private readonly clock: ManualClock) {}
  async acquire(a: { destination: string; limit: number; owner: string; holder: string; leaseMs: number; now: number }): Promise<number | null> {
    this.acquires++;
    if (this.failing) throw new StoreError('unavailable', 'postgres: no server reachable');
    for (let s = 0; s < a.limit; s++) {
      const row = this.rows.get(`${a.destination}#${s}`);
      if (!row || row.expires <= a.now) {
        this.rows.set(`${a.destination}#${s}`, { holder: a.holder, expires: a.now + a.leaseMs });
        return s;
      }
    }
    return null;
  }
  async renew(destination: string, slot: number, holder: string, leaseMs: number, now: number): Promise<boolean> {
    this.renewals++;
    const row = this.rows.get(`${destination}#${slot}`);
    if (row?.holder !== holder) return false;
    row.expires = now + leaseMs;
    return true;
  }
  async release(destination: string, slot: number, holder: string): Promise<void> {
    if (this.rows.get(`${destination}#${slot}`)?.holder === holder) this.rows.delete(`${destination}#${slot}`);
  }
  async held(): Promise<{ destination: string; owner: string; count: number }[]> {
    return [];
  }
  live(): number {
    return [...this.rows.values()].filter((r) => r.expires > this.clock.now()).length;
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function gate(clock: ManualClock, store: FakeSlots, waitMs = 10_000) {
  const { logger, lines } = captureLogger();
  return { gate: new ClusterSlotGate({ store, owner: 'n1', logger, clock, leaseMs: 3_000, waitMs, pollMs: { min: 100, max: 400 } }), lines };
}

test('takes free slots at once; then waiters line up, one poll per destination, and a freed slot wakes the line', async () => {
  const clock = new ManualClock();
  const store = new FakeSlots(clock);
  const { gate: g } = gate(clock, store);
  const h1 = await g.acquire('smtp:a.test', 2);
  const h2 = await g.acquire('smtp:a.test', 2);
  assert.ok(isSlotHold(h1) && isSlotHold(h2));
  assert.deepEqual([h1.slot, h2.slot], [0, 1]);
  const results: SlotOutcome[] = [];
  const waiting = [g.acquire('smtp:a.test', 2), g.acquire('smtp:a.test', 2), g.acquire('smtp:a.test', 2)].map((p) => p.then((o) => results.push(o)));
  await flush();
  const afterLineUp = store.acquires;
  clock.advance(300);
  await flush();
  // only the head of the line asked again (the first three asks: the two holders and the first waiter)
  assert.ok(store.acquires - afterLineUp <= 2, `one poller for the line (${store.acquires - afterLineUp} asks)`);
  assert.equal(results.length, 0);
  await h1.release();
  await flush();
  assert.equal(results.length, 1, 'the release woke the line without waiting for the poll');
  assert.ok(isSlotHold(results[0]!));
  // another destination is not held up by this line
  const other = await g.acquire('smtp:b.test', 1);
  assert.ok(isSlotHold(other));
  await h2.release();
  await flush();
  assert.equal(results.length, 2);
  for (const r of results) if (isSlotHold(r)) await r.release();
  await flush();
  clock.advance(1_000);
  await flush();
  await Promise.all(waiting);
  assert.equal(results.length, 3);
});

test('a waiter still without a slot after waitMs is told busy (4.4.5) and logged; the rest keep waiting', async () => {
  const clock = new ManualClock();
  const store = new FakeSlots(clock);
  const { gate: g, lines } = gate(clock, store, 1_000);
  const h = await g.acquire('smtp:slow.test', 1);
  assert.ok(isSlotHold(h));
  let outcome: SlotOutcome | null = null;
  void g.acquire('smtp:slow.test', 1).then((o) => (outcome = o));
  for (let i = 0; i < 8 && outcome === null; i++) {
    clock.advance(400);
    await flush();
  }
  assert.ok(outcome !== null && !isSlotHold(outcome));
  assert.match((outcome as { busy: string }).busy, /^4\.4\.5 smtp:slow\.test: all 1 delivery slots of the cluster stayed busy/);
  assert.ok(lines.some((l) => l['status'] === 'deferred' && l['destination'] === 'smtp:slow.test'));
  await h.release();
});

test('a database error is busy, not a crash; renewals keep a held slot alive past its lease', async () => {
  const clock = new ManualClock();
  const store = new FakeSlots(clock);
  const { gate: g } = gate(clock, store);
  store.failing = true;
  const o = await g.acquire('smtp:x.test', 1);
  assert.ok(!isSlotHold(o));
  assert.match(o.busy, /^4\.4\.5 cannot take a delivery slot for smtp:x\.test: postgres: no server reachable/);
  store.failing = false;
  const h = await g.acquire('smtp:x.test', 1);
  assert.ok(isSlotHold(h));
  for (let i = 0; i < 10; i++) {
    clock.advance(1_000);
    await flush();
  }
  assert.ok(store.renewals >= 5, `renewed every third of the lease (${store.renewals})`);
  assert.equal(store.live(), 1, 'still held after 10 s on a 3 s lease');
  await h.release();
  assert.equal(store.live(), 0);
});

test('the agent limiter: the shared gate is asked after a local slot; busy defers through the callback; slots are released', async () => {
  const asked: string[] = [];
  let free = 1;
  const shared: SharedSlotGate = {
    async acquire(destination, limit) {
      asked.push(`${destination}/${limit}`);
      if (free <= 0) return { busy: '4.4.5 busy' };
      free--;
      return { slot: 0, release: async () => void free++ };
    },
  };
  const slots = new DestinationSlots(() => 3, shared);
  assert.equal(await slots.run('k', async () => 'delivered', (r) => `deferred: ${r}`), 'delivered');
  assert.equal(free, 1, 'released after the delivery');
  let inside = 0;
  const both = await Promise.all([
    slots.run('k', async () => {
      inside++;
      await new Promise((r) => setTimeout(r, 20));
      return 'delivered';
    }, (r) => `deferred: ${r}`),
    slots.run('k', async () => 'delivered', (r) => `deferred: ${r}`),
  ]);
  assert.deepEqual(both, ['delivered', 'deferred: 4.4.5 busy']);
  assert.equal(inside, 1);
  assert.deepEqual(asked, ['k/3', 'k/3', 'k/3']);
  assert.equal(slots.busy('k'), 0, 'local slots freed too');
  // without a busy callback a refusal is an error the agent turns into a deferral
  free = 0;
  await assert.rejects(slots.run('k', async () => 'x'), /4\.4\.5 busy/);
  assert.equal(slots.busy('k'), 0);
});
