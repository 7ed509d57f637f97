/*
 * Per-destination concurrency held across the cluster (issue 8 item 1): the slot table on PostgreSQL
 * (src/store/backends/postgres/destination-slots.ts) — taking, racing, releasing, a dead holder's slot
 * expiring, bad input — and two schedulers with their own stores on one database (two "nodes")
 * delivering one queue to one loopback SMTP peer that counts the transactions open at once: never more
 * than destination_concurrency, although each node alone would allow that many.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClusterSlotGate } from '../../src/cluster/destination-slots.js';
import { createSmtpAgent, type SmtpAgent } from '../../src/delivery/smtp/agent.js';
import type { Resolver } from '../../src/dns/types.js';
import { LocalDomains } from '../../src/policy/domains.js';
import { captureLogger } from '../../src/queue/testing.js';
import { wireQueue } from '../../src/queue/wiring.js';
import { systemClock, type DestinationSlotStore, type Store } from '../../src/store/api.js';
import { startPeer, type Peer } from '../delivery/peer.js';
import { openPostgres, type OpenedStore } from './stores.js';

const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'no DNS in this test' }) };

describe('destination slots on PostgreSQL', () => {
  let opened: OpenedStore | null = null;
  let skipped = '';
  let a: DestinationSlotStore;
  let b: DestinationSlotStore;

  before(async () => {
    const o = await openPostgres();
    if ('skipped' in o) {
      skipped = o.skipped;
      return;
    }
    opened = o;
    await o.store.migrate();
    a = o.store.cluster.destinationSlots!;
    b = (await o.another()).cluster.destinationSlots!;
  });
  after(async () => {
    await opened?.cleanup();
  });

  test('at most `limit` holders per destination across stores; release frees one; other destinations are separate', async (t) => {
    if (!opened) return t.skip(skipped);
    const now = Date.now();
    const take = (s: DestinationSlotStore, holder: string, destination = 'smtp:one.test') => s.acquire({ destination, limit: 2, owner: holder.slice(0, 1), holder, leaseMs: 60_000, now });
    assert.equal(await take(a, 'a1'), 0);
    assert.equal(await take(b, 'b1'), 1);
    assert.equal(await take(a, 'a2'), null);
    assert.equal(await take(b, 'b2'), null);
    assert.equal(await take(b, 'b3', 'smtp:two.test'), 0);
    assert.deepEqual(await a.held(now), [
      { destination: 'smtp:one.test', owner: 'a', count: 1 },
      { destination: 'smtp:one.test', owner: 'b', count: 1 },
      { destination: 'smtp:two.test', owner: 'b', count: 1 },
    ]);
    // only the holder frees its slot
    await b.release('smtp:one.test', 0, 'b1');
    assert.equal(await take(b, 'b4'), null);
    await a.release('smtp:one.test', 0, 'a1');
    assert.equal(await take(b, 'b5'), 0);
  });

  test("a dead holder's slot is free once its lease ran out; its renewal then reports the loss", async (t) => {
    if (!opened) return t.skip(skipped);
    const now = Date.now();
    assert.equal(await a.acquire({ destination: 'smtp:dead.test', limit: 1, owner: 'dead', holder: 'd1', leaseMs: 1_000, now }), 0);
    assert.equal(await b.acquire({ destination: 'smtp:dead.test', limit: 1, owner: 'live', holder: 'l1', leaseMs: 60_000, now: now + 500 }), null);
    assert.equal(await a.renew('smtp:dead.test', 0, 'd1', 1_000, now + 900), true);
    assert.equal(await b.acquire({ destination: 'smtp:dead.test', limit: 1, owner: 'live', holder: 'l1', leaseMs: 60_000, now: now + 1_500 }), null, 'renewed until now + 1900');
    assert.equal(await b.acquire({ destination: 'smtp:dead.test', limit: 1, owner: 'live', holder: 'l1', leaseMs: 60_000, now: now + 2_000 }), 0);
    assert.equal(await a.renew('smtp:dead.test', 0, 'd1', 1_000, now + 2_100), false);
    assert.deepEqual(await a.held(now + 2_100).then((h) => h.filter((x) => x.destination === 'smtp:dead.test')), [{ destination: 'smtp:dead.test', owner: 'live', count: 1 }]);
  });

  test('racing acquires from two stores: exactly `limit` win', async (t) => {
    if (!opened) return t.skip(skipped);
    const now = Date.now();
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).acquire({ destination: 'smtp:race.test', limit: 3, owner: `o${i % 2}`, holder: `h${i}`, leaseMs: 60_000, now })));
    const won = results.filter((r) => r !== null);
    assert.equal(won.length, 3, JSON.stringify(results));
    assert.deepEqual([...won].sort(), [0, 1, 2]);
  });

  test('bad input is refused as invalid', async (t) => {
    if (!opened) return t.skip(skipped);
    const base = { destination: 'smtp:x.test', limit: 2, owner: 'o', holder: 'h', leaseMs: 1000, now: Date.now() };
    for (const bad of [{ limit: 0 }, { limit: -1 }, { limit: 1.5 }, { limit: 10_001 }, { destination: '' }, { destination: 'x'.repeat(1001) }]) {
      await assert.rejects(a.acquire({ ...base, ...bad }), (err: unknown) => (err as { kind?: string }).kind === 'invalid', JSON.stringify(bad));
    }
    await assert.rejects(a.release('', 0, 'h'), (err: unknown) => (err as { kind?: string }).kind === 'invalid');
    await assert.rejects(a.renew('', 0, 'h', 1, 1), (err: unknown) => (err as { kind?: string }).kind === 'invalid');
  });
});

describe('two schedulers on one database: destination_concurrency holds across both', { timeout: 120_000 }, () => {
  let opened: OpenedStore | null = null;
  let skipped = '';
  let peer: Peer;
  const agents: SmtpAgent[] = [];

  before(async () => {
    const o = await openPostgres();
    if ('skipped' in o) {
      skipped = o.skipped;
      return;
    }
    opened = o;
    await o.store.migrate();
    // each transaction takes 150 ms after the data: long enough for deliveries of both nodes to overlap
    peer = await startPeer({ finalDelayMs: 150 });
  });
  after(async () => {
    for (const agent of agents) await agent.close();
    await peer?.close();
    await opened?.cleanup();
  });

  function node(store: Store, name: string, shared: boolean) {
    const { logger, lines } = captureLogger();
    const gate = shared ? new ClusterSlotGate({ store: store.cluster.destinationSlots!, owner: name, logger, leaseMs: 10_000, pollMs: { min: 10, max: 100 } }) : null;
    const agent = createSmtpAgent({ resolver: noDns, logger, myHostname: `${name}.test`, myAddresses: [], smtpPort: 25, tls: () => ({ level: 'none' }), concurrency: () => LIMIT, sharedSlots: gate, connectionCache: { maxConnections: 0 } });
    agents.push(agent);
    const domains = new LocalDomains({ store, domains: [], relayDomains: [], cacheMs: 0, clock: systemClock });
    const { commit, scheduler } = wireQueue({
      store,
      logger,
      clock: systemClock,
      domains,
      delimiters: '+',
      owner: name,
      // a few entries per node, so that both nodes lease some of the one queue
      concurrency: 4,
      leaseMs: 10_000,
      pollIntervalMs: 50,
      backoff: { minimalMs: 300_000, maximalMs: 4_000_000, lifetimeMs: 5 * 86_400_000 },
      recursionLimit: 10,
      expansionLimit: 1000,
      router: () => ({ kind: 'smtp', name: 'smtp', nexthop: { host: peer.address, port: peer.port, mx: false } }),
      remote: agent,
    });
    const sent = () => lines.filter((l) => l['status'] === 'sent').length;
    return { commit, scheduler, sent };
  }

  const LIMIT = 2;

  async function round(shared: boolean, count: number): Promise<{ txPeak: number; delivered: number; sentBy: number[] }> {
    const store1 = opened!.store;
    const store2 = await opened!.another();
    const n1 = node(store1, 'node1', shared);
    const n2 = node(store2, 'node2', shared);
    peer.txPeak = 0;
    const before = peer.messages.length;
    for (let i = 0; i < count; i++) {
      await n1.commit({ sender: 'a@sender.test', recipients: [{ address: `r${i}@far.test` }], meta: {} }, Buffer.from(`Subject: ${shared ? 's' : 'u'}${i}\r\n\r\nhi\r\n`));
    }
    n1.scheduler.start();
    n2.scheduler.start();
    const end = Date.now() + 60_000;
    while (peer.messages.length - before < count && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await n1.scheduler.stop();
    await n2.scheduler.stop();
    return { txPeak: peer.txPeak, delivered: peer.messages.length - before, sentBy: [n1.sent(), n2.sent()] };
  }

  test(`limit ${LIMIT}: the peer never sees more than ${LIMIT} transactions at once, and both nodes deliver`, async (t) => {
    if (!opened) return t.skip(skipped);
    const without = await round(false, 12);
    const withSlots = await round(true, 24);
    console.log(
      `destination slots: per-node limit only → peak ${without.txPeak} transactions at once (sent by node1/node2 ${without.sentBy.join('/')}); ` +
        `cluster-wide limit ${LIMIT} → peak ${withSlots.txPeak}, ${withSlots.delivered} delivered (node1/node2 ${withSlots.sentBy.join('/')})`,
    );
    assert.ok(without.txPeak > LIMIT, `the control: two nodes with a per-node limit exceed it together (peak ${without.txPeak})`);
    assert.equal(withSlots.delivered, 24);
    assert.ok(withSlots.txPeak <= LIMIT, `never more than ${LIMIT} at once (peak ${withSlots.txPeak})`);
    assert.equal(withSlots.txPeak, LIMIT, 'the limit is used, not undershot');
    assert.ok(withSlots.sentBy[0]! > 0 && withSlots.sentBy[1]! > 0, `both nodes delivered: ${withSlots.sentBy.join('/')}`);
    // every slot is free again
    const held = await opened.store.cluster.destinationSlots!.held(Date.now());
    assert.deepEqual(held, []);
  });
});
