import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { blobCollectionJob } from '../../src/cluster/jobs.js';
import { SingletonRunner, type SingletonJob } from '../../src/cluster/singleton.js';
import { ManualClock } from '../../src/net/clock.js';
import { captureLogger } from '../../src/queue/testing.js';
import { terminateJobHolder } from '../../src/store/backends/postgres/testing.js';
import type { Store } from '../../src/store/index.js';
import { openEmbedded, openPostgres, type OpenedStore } from './stores.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
  return Date.now() - start;
}

/** Jobs that record which node ran them, and check that no two runs of one job overlap. */
function recordingJobs(node: string, log: { job: string; node: string }[], active: Map<string, string>): SingletonJob[] {
  return ['alpha', 'beta'].map((name) => ({
    name,
    intervalMs: 100,
    run: async () => {
      const other = active.get(name);
      assert.equal(other, undefined, `${name} ran on ${node} while ${other} ran it`);
      active.set(name, node);
      log.push({ job: name, node });
      await sleep(5);
      active.delete(name);
    },
  }));
}

describe('singleton jobs on PostgreSQL', () => {
  let s: OpenedStore | null = null;
  let skipped = '';
  before(async () => {
    const opened = await openPostgres();
    if ('skipped' in opened) skipped = opened.skipped;
    else s = opened;
  });
  after(async () => {
    await s?.cleanup();
  });

  test('two nodes: exactly one runs the jobs; killing its connection moves them to the other within the poll time', async (t) => {
    if (!s) return t.skip(skipped);
    const storeA = s.store;
    const storeB = await s.another(); // a separate pool, as another node would have
    const log: { job: string; node: string }[] = [];
    const active = new Map<string, string>();
    const { logger, lines } = captureLogger();
    const pollMs = 200;
    const runner = (store: Store, node: string) => new SingletonRunner({ store, logger, node, pollMs, jobs: recordingJobs(node, log, active) });
    const a = runner(storeA, 'node-a');
    const b = runner(storeB, 'node-b');
    a.start();
    await until('node-a holds both jobs', () => a.held().length === 2);
    b.start();
    await sleep(3 * pollMs);
    assert.deepEqual(b.held(), [], 'the second node waits');
    assert.ok(log.length >= 2 && log.every((r) => r.node === 'node-a'));
    const holders = await storeB.cluster.jobHolders();
    assert.deepEqual(holders.map((h) => [h.job, h.node]), [['alpha', 'node-a'], ['beta', 'node-a']]);

    // node-a's database connection dies (as with a killed node): the advisory locks go with it
    const killedAt = Date.now();
    assert.ok(await terminateJobHolder(s.url ?? '', 'alpha'));
    const takeover = await until('node-b takes both jobs', () => b.held().length === 2, 25 * pollMs);
    const runsOfB = () => log.filter((r) => r.node === 'node-b').length;
    await until('node-b runs them', () => runsOfB() >= 2, 25 * pollMs);
    t.diagnostic(`takeover ${Date.now() - killedAt} ms after the holder's connection was terminated (poll ${pollMs} ms; took ${takeover} ms to see)`);
    assert.ok(Date.now() - killedAt < 25 * pollMs, "moved within a few polls");
    // node-a notices, opens a new session, and finds both jobs taken
    await until('node-a lets go', () => a.held().length === 0, 25 * pollMs);
    await sleep(3 * pollMs);
    assert.deepEqual(a.held(), []);
    const holdersAfter = await storeA.cluster.jobHolders();
    assert.deepEqual(holdersAfter.map((h) => h.node), ['node-b', 'node-b']);
    assert.ok(lines.some((l) => /released: lock session (lost|failed)/.test(String(l.msg))), 'node-a logs the loss');

    // a graceful stop hands over at once
    await b.stop();
    await until('node-a takes the jobs back after node-b stopped', () => a.held().length === 2, 25 * pollMs);
    await a.stop();
    assert.deepEqual((await storeA.cluster.jobHolders()).map((h) => h.node), [null, null], 'nobody holds a job after both stopped');
  });

  test('a job that fails keeps its lock and is retried at its next interval', async (t) => {
    if (!s) return t.skip(skipped);
    const { logger, lines } = captureLogger();
    let calls = 0;
    const r = new SingletonRunner({
      store: s.store,
      logger,
      node: 'node-f',
      pollMs: 50,
      jobs: [{ name: 'flaky', intervalMs: 50, run: async () => { calls++; throw new Error('boom'); } }],
    });
    r.start();
    await until('two attempts', () => calls >= 2);
    assert.deepEqual(r.held(), ['flaky']);
    await r.stop();
    assert.ok(lines.some((l) => /flaky failed; retrying/.test(String(l.msg))));
  });
});

describe('singleton jobs on the embedded store', () => {
  let s: OpenedStore;
  before(async () => {
    s = await openEmbedded();
  });
  after(async () => {
    await s.cleanup();
  });

  test('the one node always holds every job; blob collection runs on the injected clock', async () => {
    const clock = new ManualClock(Date.now());
    const { logger } = captureLogger();
    const { id, blobId } = await s.store.queue.commit({ sender: '', recipients: [{ address: 'r@x.test' }], content: Buffer.from('bytes') }, clock.now());
    await s.store.queue.remove(id);
    const r = new SingletonRunner({ store: s.store, logger, node: 'solo', clock, pollMs: 1_000, jobs: [blobCollectionJob(s.store, { intervalMs: 60_000, graceMs: 10_000 })] });
    await r.tick();
    assert.deepEqual(r.held(), ['blob-gc']);
    assert.equal(await s.store.blobs.refs(blobId), 0, 'kept during the grace period');
    clock.advance(60_000);
    await r.tick();
    assert.equal(await s.store.blobs.refs(blobId), null, 'collected');
    assert.deepEqual((await s.store.cluster.jobHolders()).map((h) => [h.job, h.node]), [['blob-gc', 'solo']]);
    await r.stop();
    assert.deepEqual((await s.store.cluster.jobHolders()).map((h) => h.node), [null]);
  });

  test('bad job lists are refused at construction', () => {
    const { logger } = captureLogger();
    const job = (name: string): SingletonJob => ({ name, intervalMs: 1, run: async () => undefined });
    assert.throws(() => new SingletonRunner({ store: s.store, logger, node: 'n', jobs: [job('a'), job('a')] }), /twice/);
    assert.throws(() => new SingletonRunner({ store: s.store, logger, node: 'n', jobs: [job('A B')] }));
    assert.throws(() => new SingletonRunner({ store: s.store, logger, node: 'n', jobs: [{ ...job('a'), intervalMs: 0 }] }));
  });
});
