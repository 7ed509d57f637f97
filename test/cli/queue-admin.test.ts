/*
 * `cartero queue` administration as real processes: bulk selections for hold/release/delete/requeue,
 * delete --all-deferred, pause/resume seen by lease(), totals, and the admin log (who did what).
 */
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { openStore, type Store } from '../../src/store/index.js';
import { tempConfig, type TempConfig } from './helpers.js';
import { runCmd } from './queue-helpers.js';

const msg = (subject: string): Buffer => Buffer.from(`From: a@sender.test\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
const HOUR = 3_600_000;

describe('cartero queue administration', () => {
  let t: TempConfig;
  const c = (): string[] => ['-c', t.file];
  const ids: Record<'tried' | 'fresh' | 'other' | 'held', string> = { tried: '', fresh: '', other: '', held: '' };

  async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  const run = async (...args: string[]) => {
    const r = await runCmd(['queue', ...args, ...c()]);
    return r;
  };
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await run(...args, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  before(() => {
    t = tempConfig('domains: [example.test]\nlog: { format: json }\n');
  });
  after(() => t.cleanup());

  beforeEach(async () => {
    await withStore(async (s) => {
      for (const e of await s.queue.list()) await s.queue.remove(e.id);
      for (const p of await s.queue.pauses()) await s.queue.resume(p.domain, Date.now());
      const now = Date.now();
      ids.tried = (await s.queue.commit({ sender: 'alice@sender.test', recipients: [{ address: 'bob@dead.test' }, { address: 'carl@live.test' }], content: msg('one') }, now - 2 * HOUR)).id;
      ids.fresh = (await s.queue.commit({ sender: 'alice@sender.test', recipients: [{ address: 'dora@dead.test' }], content: msg('two'), dueAt: now + HOUR }, now - 30 * 60_000)).id;
      ids.other = (await s.queue.commit({ sender: 'zed@z.test', recipients: [{ address: 'eve@live.test' }], content: msg('three'), dueAt: now + HOUR }, now - 60_000)).id;
      ids.held = (await s.queue.commit({ sender: 'zed@z.test', recipients: [{ address: 'fay@dead.test' }], content: msg('four'), hold: true }, now)).id;
      const [lease] = await s.queue.lease({ owner: 'test', limit: 1, leaseMs: 60_000, now });
      assert.equal(lease?.entry.id, ids.tried);
      const [bob, carl] = lease.entry.recipients;
      await s.queue.complete(
        ids.tried,
        lease.token,
        [
          { recipientId: bob!.id, outcome: 'deferred', reason: '451 4.4.1 connect to mx.dead.test[192.0.2.9]:25: Connection refused', retryAt: now + HOUR },
          { recipientId: carl!.id, outcome: 'done' },
        ],
        now,
      );
    });
  });

  test('bulk hold/release/requeue/delete by --sender, --recipient, --domain, --reason; each logged with the user', async () => {
    const me = userInfo().username;
    const held = await run('hold', '--domain', 'DEAD.test');
    assert.equal(held.code, 0, held.stderr);
    assert.equal(held.stdout, `${ids.tried}: held\n${ids.fresh}: held\nheld 2 messages\n`, 'a done recipient (carl@live.test) does not select; held entries are not held again');
    const lines = held.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => [l.queue_id, l.action, l.user, l.pid]), [
      [ids.tried, 'hold', me, lines[0]?.pid],
      [ids.fresh, 'hold', me, lines[0]?.pid],
    ]);
    assert.equal(typeof lines[0]?.pid, 'number');
    assert.match(String(lines[0]?.msg), new RegExp(`^${ids.tried}: hold by ${me} \\(pid \\d+\\) on \\S+ \\(selected by --domain dead\\.test\\)$`));

    const released = await json<{ released: string[] }>('release', '--sender', 'ALICE@sender.test');
    assert.deepEqual(released.released, [ids.tried, ids.fresh]);
    assert.deepEqual((await json<{ released: string[] }>('release', '--recipient', 'fay@dead.test')).released, [ids.held]);

    const requeued = await json<{ requeued: string[] }>('requeue', '--reason', 'connection REFUSED');
    assert.deepEqual(requeued.requeued, [ids.tried]);
    assert.ok(((await withStore((s) => s.queue.get(ids.tried)))?.dueAt ?? Infinity) <= Date.now());

    const deleted = await json<{ deleted: string[] }>('delete', '--sender', 'zed@z.test', '--domain', 'live.test');
    assert.deepEqual(deleted.deleted, [ids.other], 'options combine with AND');

    const show = await run('show', ids.tried);
    assert.match(show.stdout, new RegExp(`\\nadmin actions:\\n  \\S+ ${ids.tried} hold by ${me} \\(pid \\d+\\) on \\S+ \\(selected by --domain dead\\.test\\)\\n  \\S+ ${ids.tried} release by ${me} .*\\n  \\S+ ${ids.tried} requeue by ${me} .*--reason "connection refused"`));
    const showJson = await json<{ adminLog: { action: string; actor: string }[] }>('show', ids.tried);
    assert.deepEqual(showJson.adminLog.map((r) => r.action), ['hold', 'release', 'requeue']);

    // the log outlives a deleted entry
    const log = await json<{ action: string; target: string }[]>('log', ids.other);
    assert.deepEqual(log.map((r) => r.action), ['delete']);
    const all = await run('log', '--limit', '2');
    assert.equal(all.stdout.trim().split('\n').length, 2);
    assert.equal((await run('log', '--limit', 'lots')).code, 2);
    assert.equal((await run('log', '--limit', '0')).code, 2);
  });

  test('delete --all-deferred removes only entries that were tried and deferred', async () => {
    const r = await run('delete', '--all-deferred');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ids.tried}: deleted\ndeleted 1 message\n`);
    const left = await withStore(async (s) => (await s.queue.list()).map((e) => e.id));
    assert.deepEqual(left, [ids.fresh, ids.other, ids.held]);
    assert.equal((await run('delete', '--all-deferred', ids.fresh)).code, 2, 'ids and a selection do not mix');
    assert.deepEqual((await json<{ deleted: string[] }>('delete', '--all-deferred')).deleted, []);
  });

  test('pause keeps a domain from lease on any store client; resume makes its entries due now', async () => {
    const p = await run('pause', 'Dead.TEST');
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout, 'Dead.TEST: paused\n');
    assert.equal((await run('pause', 'dead.test')).stdout, 'dead.test: already paused\n');
    const paused = await json<{ domain: string; by: string }[]>('paused');
    assert.deepEqual(paused.map((x) => x.domain), ['dead.test']);
    assert.match(paused[0]?.by ?? '', new RegExp(`^${userInfo().username} \\(pid \\d+\\) on `));

    await withStore(async (s) => {
      const now = Date.now() + 2 * HOUR; // everything is due by then
      await s.queue.release(ids.held, now);
      const leased = await s.queue.lease({ owner: 'n', limit: 10, leaseMs: 1000, now });
      assert.deepEqual(leased.map((l) => l.entry.id), [ids.other], 'only the entry without a dead.test recipient');
    });

    const totals = await json<{ domains: { domain: string; paused: boolean; total: number }[] }>('totals');
    assert.deepEqual(totals.domains.find((d) => d.domain === 'dead.test'), { ...totals.domains.find((d) => d.domain === 'dead.test'), paused: true, total: 3 });

    const r = await json<{ flushed: string[] }>('resume', 'dead.test');
    assert.deepEqual(r.flushed, [ids.tried, ids.fresh, ids.held]);
    assert.equal((await run('paused')).stdout, 'no paused domains\n');
    const again = await run('resume', 'dead.test');
    assert.deepEqual([again.code, again.stderr], [1, 'cartero: dead.test is not paused\n']);
    const bad = await run('pause', 'not a domain');
    assert.deepEqual([bad.code, bad.stderr], [1, 'cartero: invalid domain "not a domain"\n']);
    assert.deepEqual((await json<{ action: string; target: string }[]>('log', 'dead.test')).map((x) => x.action), ['pause', 'resume']);
  });

  test('flush DOMAIN uses the pending recipients only; an invalid domain is refused', async () => {
    assert.deepEqual((await json<{ flushed: string[] }>('flush', 'live.test')).flushed, [ids.other], 'carl@live.test is done');
    const bad = await run('flush', 'bad/domain');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid domain/);
  });

  test('totals: recipients by destination in qshape age columns, and by reason', async () => {
    const r = await run('totals');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'pending recipients by destination and age in minutes (4 in 4 messages)');
    assert.match(lines[2] ?? '', /^ +T +5 +10 +20 +40 +80 +160 +320 +640 +1280 +1280\+$/);
    assert.match(lines[3] ?? '', /^ +TOTAL +4 +2 +0 +0 +1 +0 +1 +0 +0 +0 +0$/);
    assert.match(lines[4] ?? '', /^ *dead\.test +3 +1 +0 +0 +1 +0 +1 /);
    assert.match(lines[5] ?? '', /^ *live\.test +1 +1 /);
    assert.match(r.stdout, /\nby reason:\n  3  \(not tried yet\)\n  1  451 4\.4\.1 connect to mx\.dead\.test\[…\]: Connection refused\n$/);
  });
});
