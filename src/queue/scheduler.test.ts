import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createLocalAgent } from '../delivery/local.js';
import { provisionAccount } from '../directory/accounts.js';
import type { DeliveryAgent } from './agent.js';
import { StoreError, type Store } from '../store/index.js';
import { localDomainRouter, QueueScheduler, STORE_RETRY_MS } from './scheduler.js';
import { buildPipeline, captureLogger, inboxTexts, ManualClock, message, openTestStore, type TestStore } from './testing.js';

// each test gets its own store, so queue entries of one test never show up in another's lease
let t: TestStore;
const S = 1000;

beforeEach(async () => {
  t = await openTestStore();
  await t.store.directory.addDomain('example.test');
  for (const a of ['bob@example.test', 'crash@example.test', 'stop@example.test', 'par@example.test']) await provisionAccount(t.store, a, null);
  await provisionAccount(t.store, 'tiny@example.test', null, 100);
});

afterEach(() => t.cleanup());

const envelope = (rcpts: string[], sender = 'alice@sender.test') => ({ sender, recipients: rcpts.map((address) => ({ address })), meta: {} });

describe('scheduler', () => {
  test('a commit kicks the scheduler: delivered into INBOX at once, exactly once, queue emptied', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'] });
    p.scheduler.start();
    try {
      const { queueId } = await p.commit(envelope(['bob+inbox@example.test']), message('kick'));
      await p.scheduler.idle();
      assert.deepEqual(await inboxTexts(t.store, 'bob@example.test'), [
        `Return-Path: <alice@sender.test>\r\nDelivered-To: bob@example.test\r\n${message('kick').toString()}`,
      ]);
      assert.equal(await t.store.queue.get(queueId), null);
      const line = lines.find((l) => l.queue_id === queueId && l.status === 'sent');
      assert.ok(line);
      assert.deepEqual(
        { recipient: line.recipient, orig_to: line.orig_to, relay: line.relay, delay: line.delay, reason: line.reason },
        { recipient: 'bob@example.test', orig_to: 'bob+inbox@example.test', relay: 'local', delay: 0, reason: 'delivered to mailbox' },
      );
      assert.equal(line.msg, `${queueId}: to=<bob@example.test>, orig_to=<bob+inbox@example.test>, relay=local, delay=0, status=sent (delivered to mailbox)`);
      assert.equal(await p.scheduler.runOnce(), 0);
    } finally {
      await p.scheduler.stop();
    }
  });

  test('a crash between append and complete: after the lease expires, one copy only', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'], leaseMs: 60 * S });
    const { queueId } = await p.commit(envelope(['crash@example.test']), message('crash'));
    // the "crashed" node: leases, delivers, dies before complete
    const [lease] = await t.store.queue.lease({ owner: 'crashed', limit: 10, leaseMs: 60 * S, now: clock.now() });
    assert.equal(lease?.entry.id, queueId);
    const agent = createLocalAgent({ store: t.store, delimiters: '+' });
    const content = await t.store.queue.content(queueId);
    assert.equal((await agent.deliver({ queueId, sender: lease.entry.sender, recipient: 'crash@example.test', content, now: clock.now() })).outcome, 'done');
    assert.equal((await inboxTexts(t.store, 'crash@example.test')).length, 1);

    clock.advance(30 * S);
    assert.equal(await p.scheduler.runOnce(), 0, 'lease still held');
    clock.advance(30 * S + 1);
    assert.equal(await p.scheduler.runOnce(), 1, 'taken over after expiry');
    assert.equal((await inboxTexts(t.store, 'crash@example.test')).length, 1);
    assert.equal(await t.store.queue.get(queueId), null);
    assert.match(String(lines.find((l) => l.queue_id === queueId && l.status === 'sent')?.reason), /duplicate suppressed/);
    // the old holder's late complete is fenced off
    await assert.rejects(t.store.queue.complete(queueId, lease.token, [], clock.now()), { kind: 'stale_lease' });
  });

  test('over quota defers with backoff, then delivers once the quota is raised', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'] });
    const t0 = clock.now();
    const { queueId } = await p.commit(envelope(['tiny@example.test']), message('quota'));
    assert.equal(await p.scheduler.runOnce(), 1);
    const entry = await t.store.queue.get(queueId);
    assert.equal(entry?.dueAt, t0 + 300 * S);
    assert.equal(entry?.recipients[0]?.lastError, '452 4.2.2 <tiny@example.test>: Mailbox full');
    assert.equal(lines.find((l) => l.queue_id === queueId && l.recipient === 'tiny@example.test')?.status, 'deferred');
    await t.store.directory.setQuota('tiny@example.test', 1_000_000);
    clock.advance(299 * S);
    assert.equal(await p.scheduler.runOnce(), 0, 'not due before the backoff');
    clock.advance(1 * S);
    assert.equal(await p.scheduler.runOnce(), 1);
    assert.equal((await inboxTexts(t.store, 'tiny@example.test')).length, 1);
    assert.equal(await t.store.queue.get(queueId), null);
  });

  test('a delivery deferred by trouble of our own store is retried after STORE_RETRY_MS, not the backoff', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'] });
    const t0 = clock.now();
    const { queueId } = await p.commit(envelope(['bob@example.test']), message('outage'));
    // the real local agent on a store whose mailbox writes fail as during a database outage
    let down = true;
    const messages = t.store.messages;
    const flaky: Store = {
      ...t.store,
      messages: { ...messages, append: (...a) => (down ? Promise.reject(new StoreError('unavailable', 'database is down')) : messages.append(...a)) },
    };
    const scheduler = new QueueScheduler({
      store: t.store, logger, clock, router: localDomainRouter(p.domains), local: createLocalAgent({ store: flaky, delimiters: '+' }), owner: 'outage',
      concurrency: 1, leaseMs: 60 * S, pollIntervalMs: 1000, backoff: { minimalMs: 300 * S, maximalMs: 4000 * S, lifetimeMs: 86_400 * S },
    });
    assert.equal(await scheduler.runOnce(), 1);
    assert.equal((await t.store.queue.get(queueId))?.dueAt, t0 + STORE_RETRY_MS);
    assert.match(String(lines.find((l) => l.queue_id === queueId && l.status === 'deferred')?.reason), /^451 4\.3\.0 mailbox store: .*database is down/);
    down = false;
    clock.advance(STORE_RETRY_MS);
    assert.equal(await scheduler.runOnce(), 1);
    assert.equal((await inboxTexts(t.store, 'bob@example.test')).length, 1);
    assert.equal(await t.store.queue.get(queueId), null);
  });

  test('the first attempt uses the bytes the commit stored; a retry reads them from the store', async () => {
    const clock = new ManualClock();
    const { logger } = captureLogger();
    let reads = 0;
    const queue = t.store.queue;
    const counted: Store = { ...t.store, queue: { ...queue, content: (id) => (reads++, queue.content(id)) } };
    const p = buildPipeline(counted, clock, logger, { domains: ['example.test'] });
    await p.commit(envelope(['bob@example.test']), message('fresh'));
    assert.equal(await p.scheduler.runOnce(), 1);
    assert.equal(reads, 0);
    assert.equal((await inboxTexts(t.store, 'bob@example.test')).length, 1);

    const { queueId } = await p.commit(envelope(['tiny@example.test']), message('too big for the quota'));
    assert.equal(await p.scheduler.runOnce(), 1);
    assert.equal(reads, 0, 'deferred on its first attempt, from memory');
    await t.store.directory.setQuota('tiny@example.test', 1_000_000);
    clock.advance(300 * S);
    assert.equal(await p.scheduler.runOnce(), 1);
    assert.equal(reads, 1, 'the retry read the store');
    assert.equal(await t.store.queue.get(queueId), null);
    assert.deepEqual(await inboxTexts(t.store, 'tiny@example.test'), [
      `Return-Path: <alice@sender.test>\r\nDelivered-To: tiny@example.test\r\n${message('too big for the quota').toString()}`,
    ]);
  });

  test('retry backoff doubles from minimal_backoff up to maximal_backoff; expiry at the queue lifetime', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const backoff = { minimalMs: 300 * S, maximalMs: 4000 * S, lifetimeMs: 5 * 86_400 * S };
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'], backoff });
    const t0 = clock.now();
    const { queueId } = await p.commit(envelope(['far@remote.test']), message('backoff'));
    const dues: number[] = [];
    for (let i = 0; i < 7; i++) {
      assert.equal(await p.scheduler.runOnce(), 1);
      const e = await t.store.queue.get(queueId);
      assert.ok(e);
      dues.push((e.dueAt - t0) / S);
      clock.t = e.dueAt;
    }
    assert.deepEqual(dues, [300, 600, 1200, 2400, 4800, 8800, 12800]);
    const first = lines.find((l) => l.queue_id === queueId && l.status === 'deferred');
    assert.equal(first?.relay, 'none');
    assert.match(String(first?.reason), /remote delivery is not configured/);

    // run until the lifetime: the last retry lands on the mark, then the recipient fails
    let rounds = 0;
    while ((await t.store.queue.get(queueId)) && rounds++ < 200) {
      const e = await t.store.queue.get(queueId);
      if (e) clock.t = e.dueAt;
      await p.scheduler.runOnce();
    }
    assert.equal(await t.store.queue.get(queueId), null);
    assert.equal(clock.now() - t0, backoff.lifetimeMs);
    const last = lines.filter((l) => l.queue_id === queueId && l.recipient === 'far@remote.test').at(-1);
    assert.equal(last?.status, 'bounced');
    assert.match(String(last?.reason), /^message expired after 432000s in the queue: /);
    assert.ok(lines.some((l) => l.queue_id === queueId && /non-delivery notification not sent/.test(String(l.msg))));
  });

  test('bounded concurrency, and stop() finishes what it started', async () => {
    const clock = new ManualClock();
    const { logger } = captureLogger();
    const real = createLocalAgent({ store: t.store, delimiters: '+' });
    let running = 0;
    let peak = 0;
    // instruments the real agent (no mock): counts deliveries in progress
    const counting: DeliveryAgent = {
      relay: 'local',
      async deliver(job) {
        peak = Math.max(peak, ++running);
        try {
          await sleep(5);
          return await real.deliver(job);
        } finally {
          running--;
        }
      },
    };
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'] });
    for (let i = 0; i < 12; i++) await p.commit(envelope(['par@example.test']), message(`par${i}`));
    const scheduler = new QueueScheduler({
      store: t.store, logger, clock, router: localDomainRouter(p.domains), local: counting, owner: 'par', concurrency: 3,
      leaseMs: 60 * S, pollIntervalMs: 1000, backoff: { minimalMs: 300 * S, maximalMs: 4000 * S, lifetimeMs: 86_400 * S },
    });
    scheduler.start();
    await sleep(20);
    await scheduler.stop();
    const counts = await t.store.queue.counts(clock.now());
    assert.equal(counts.leased, 0, 'nothing left half-done');
    const delivered = (await inboxTexts(t.store, 'par@example.test')).length;
    assert.equal(delivered + counts.active, 12);
    assert.ok(peak <= 3 && peak >= 2, `peak ${peak}`);
    scheduler.kick(); // ignored after stop
    let handled = 0;
    for (let n = await scheduler.runOnce(); n > 0; n = await scheduler.runOnce()) {
      assert.ok(n <= 3, 'a lease round takes at most `concurrency` entries');
      handled += n;
    }
    assert.equal(handled, 12 - delivered);
    assert.equal((await inboxTexts(t.store, 'par@example.test')).length, 12);
  });

  test('the lease is renewed while a delivery runs', async () => {
    const clock = new ManualClock();
    const { logger } = captureLogger();
    const real = createLocalAgent({ store: t.store, delimiters: '+' });
    const p = buildPipeline(t.store, clock, logger, { domains: ['example.test'] });
    const { queueId } = await p.commit(envelope(['stop@example.test']), message('renew'));
    const slow: DeliveryAgent = {
      relay: 'local',
      async deliver(job) {
        clock.advance(500); // of a 750 ms lease
        await sleep(700); // the renewal timer (every 250 ms) runs meanwhile
        clock.advance(500); // past the first lease's end
        assert.equal((await t.store.queue.lease({ owner: 'thief', limit: 10, leaseMs: 750, now: clock.now() })).length, 0);
        return real.deliver(job);
      },
    };
    const scheduler = new QueueScheduler({
      store: t.store, logger, clock, router: localDomainRouter(p.domains), local: slow, owner: 'slow', concurrency: 1,
      leaseMs: 750, pollIntervalMs: 1000, backoff: { minimalMs: 300 * S, maximalMs: 4000 * S, lifetimeMs: 86_400 * S },
    });
    assert.equal(await scheduler.runOnce(), 1);
    assert.equal(await t.store.queue.get(queueId), null);
  });
});
