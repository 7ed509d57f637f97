import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Membership } from '../../src/cluster/membership.js';
import { clusterStatus, isAlive } from '../../src/cluster/status.js';
import { ManualClock } from '../../src/net/clock.js';
import { isStoreError, type NodeInfo } from '../../src/store/index.js';
import { captureLogger } from '../../src/queue/testing.js';
import { openEmbedded, openPostgres, type OpenedStore } from './stores.js';

const node = (name: string, extra: Partial<NodeInfo> = {}): NodeInfo => ({
  name,
  hostname: 'vm',
  pid: 1000,
  roles: ['smtp', 'delivery'],
  version: '0.1.0',
  heartbeatMs: 1000,
  ...extra,
});

for (const backend of ['embedded', 'postgres'] as const) {
  describe(`cluster registry (${backend})`, () => {
    let s: OpenedStore | null = null;
    let skipped = '';
    before(async () => {
      const opened = backend === 'embedded' ? await openEmbedded() : await openPostgres();
      if ('skipped' in opened) skipped = opened.skipped;
      else s = opened;
    });
    after(async () => {
      await s?.cleanup();
    });

    test('register, heartbeat, re-register under the same name, deregister, prune', async (t) => {
      if (!s) return t.skip(skipped);
      const c = s.store.cluster;
      const first = await c.register(node('mx1'), 1_000);
      assert.equal(first.startedAt, 1_000);
      assert.deepEqual(first.roles, ['delivery', 'smtp']);
      await c.heartbeat('mx1', first.incarnation, 2_000);
      await c.heartbeat('mx1', first.incarnation, 1_500); // a late heartbeat never moves time back
      assert.equal((await c.nodes())[0]?.lastHeartbeat, 2_000);

      // a restarted node registers the same name again: one row, the new process's
      const second = await c.register(node('mx1', { pid: 2000 }), 3_000);
      assert.notEqual(second.incarnation, first.incarnation);
      const rows = await c.nodes();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.pid, 2000);
      await assert.rejects(c.heartbeat('mx1', first.incarnation, 4_000), (err) => isStoreError(err, 'conflict'));
      await assert.rejects(c.heartbeat('mx9', first.incarnation, 4_000), (err) => isStoreError(err, 'not_found'));
      await c.deregister('mx1', first.incarnation); // an old incarnation cannot remove the new row
      assert.equal((await c.nodes()).length, 1);

      await c.register(node('mx2'), 10_000);
      assert.deepEqual(await c.prune(5_000), ['mx1']);
      assert.deepEqual((await c.nodes()).map((n) => n.name), ['mx2']);
      await c.deregister('mx2', (await c.nodes())[0]?.incarnation ?? '');
      assert.deepEqual(await c.nodes(), []);
    });

    test('hostile node descriptions never reach the table', async (t) => {
      if (!s) return t.skip(skipped);
      const c = s.store.cluster;
      for (const bad of [node('mx\r\n1'), node("x'; DROP TABLE cluster_nodes; --"), node('ok', { roles: ['<script>'] }), node('ok', { heartbeatMs: 0 })]) {
        await assert.rejects(c.register(bad, 1), (err) => isStoreError(err, 'invalid'));
      }
      await assert.rejects(c.openJobLocks('bad name'), (err) => isStoreError(err, 'invalid'));
      const locks = await c.openJobLocks('ok');
      await assert.rejects(locks.tryAcquire('Bad Job', 1), (err) => isStoreError(err, 'invalid'));
      await locks.close();
      assert.deepEqual(await c.nodes(), []);
    });

    test('leases are counted per owner; status matches "<name>" and "<name>:<pid>" owners to nodes', async (t) => {
      if (!s) return t.skip(skipped);
      const { store } = s;
      const now = Date.now();
      for (let i = 0; i < 3; i++) await store.queue.commit({ sender: 'a@x.test', recipients: [{ address: `r${i}@x.test` }], content: Buffer.from(`m${i}`) }, now);
      await store.queue.lease({ owner: 'mx1:1000', limit: 2, leaseMs: 60_000, now });
      await store.queue.lease({ owner: 'stranger', limit: 1, leaseMs: 60_000, now });
      assert.deepEqual(await store.cluster.leases(now), [
        { owner: 'mx1:1000', count: 2 },
        { owner: 'stranger', count: 1 },
      ]);
      assert.deepEqual(await store.cluster.leases(now + 120_000), [], 'expired leases are not held');
      await store.cluster.register(node('mx1'), now);
      const status = await clusterStatus(store, now + 500);
      assert.equal(status.nodes[0]?.leases, 2);
      assert.equal(status.nodes[0]?.alive, true);
      assert.deepEqual(status.otherLeases, [{ owner: 'stranger', count: 1 }]);
      assert.equal(status.queue.leased, 3);
      const later = await clusterStatus(store, now + 3_001, { missedHeartbeats: 3 });
      assert.equal(later.nodes[0]?.alive, false, 'dead after 3 missed heartbeats');
      if (backend === 'postgres') {
        const db = status.database;
        assert.ok(db && !('error' in db));
        assert.equal(db.inRecovery, false);
        assert.match(db.version, /^\d+/);
      } else assert.equal(status.database, null);
    });

    test('Membership: registers, heartbeats on the clock, comes back after being pruned, leaves at stop', async (t) => {
      if (!s) return t.skip(skipped);
      const c = s.store.cluster;
      for (const n of await c.nodes()) await c.deregister(n.name, n.incarnation);
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const { logger, lines } = captureLogger();
      const m = new Membership({ store: s.store, logger, clock, node: node('mx7', { heartbeatMs: 2_000 }) });
      await m.start();
      assert.equal(m.state, 'registered');
      const t0 = clock.now();
      for (let i = 1; i <= 3; i++) {
        clock.advance(2_000);
        await m.beat(); // joins the round the timer started
      }
      const row = (await c.nodes()).find((n) => n.name === 'mx7');
      assert.equal(row?.lastHeartbeat, t0 + 6_000);
      assert.ok(row && isAlive(row, clock.now()));
      assert.ok(!isAlive(row, clock.now() + 6_001), 'three missed heartbeats: dead');

      assert.deepEqual(await c.prune(clock.now() + 1), ['mx7']);
      clock.advance(2_000);
      await m.beat();
      assert.ok((await c.nodes()).some((n) => n.name === 'mx7'), 'registered again');
      assert.ok(lines.some((l) => /missing from the registry/.test(String(l.msg))));

      // another process takes the name: this one stops heartbeating instead of fighting over the row
      await c.register(node('mx7', { pid: 4242 }), clock.now());
      clock.advance(2_000);
      await m.beat();
      assert.equal(m.state, 'replaced');
      await m.stop();
      assert.equal((await c.nodes()).find((n) => n.name === 'mx7')?.pid, 4242, 'the newer registration is kept');

      const m2 = new Membership({ store: s.store, logger, clock, node: node('mx8') });
      await m2.start();
      await m2.stop();
      assert.ok(!(await c.nodes()).some((n) => n.name === 'mx8'), 'a graceful stop leaves the registry');
      assert.throws(() => new Membership({ store: s!.store, logger, clock, node: node('bad name') }), (err) => isStoreError(err, 'invalid'));
    });
  });
}
