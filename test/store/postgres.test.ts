/*
 * The store contract against a real PostgreSQL, plus what only a shared database can show: two Store
 * instances on one database behave like two nodes (NOTIFY, leases, migrations), and an unreachable or
 * read-only server is reported as `unavailable`. Skipped with one line when no server is reachable
 * (outside CI, where that is a failure).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { corruptBlob, terminateSessions } from '../../src/store/backends/postgres/testing.js';
import { MIGRATIONS } from '../../src/store/backends/postgres/migrations.js';
import { openStore, type Store } from '../../src/store/index.js';
import { StoreError } from '../../src/store/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { runStoreContract, type ContractHandle } from './contract.js';

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);

function message(body: string): Buffer {
  return Buffer.from(`From: a@example.test\r\nTo: b@example.test\r\nSubject: pg\r\n\r\n${body}\r\n`);
}

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  if ('skipped' in db) throw new Error(db.skipped);
  return db;
}

/** Opens `n` Stores on one fresh database (the first migrated); closes them and drops it afterwards. */
async function withNodes(n: number, fn: (stores: Store[], db: TestDatabase) => Promise<void>, options: { migrate?: boolean } = {}): Promise<void> {
  const db = await freshDatabase();
  const stores: Store[] = [];
  try {
    for (let i = 0; i < n; i++) stores.push(await openStore({ backend: 'postgres', url: db.url }, { migrate: i === 0 && options.migrate !== false }));
    await fn(stores, db);
  } finally {
    for (const s of stores) await s.close();
    await db.drop();
  }
}

async function openHandle(): Promise<ContractHandle> {
  const db = await freshDatabase();
  const store = await openStore({ backend: 'postgres', url: db.url });
  const peers: Store[] = [];
  return {
    store,
    async cleanup() {
      for (const p of peers) await p.close();
      await store.close();
      await db.drop();
    },
    corruptBlob: (id) => corruptBlob(db.url, id),
    async openPeer() {
      const peer = await openStore({ backend: 'postgres', url: db.url }, { migrate: false });
      peers.push(peer);
      return peer;
    },
  };
}

async function rejectsKind(p: Promise<unknown>, kind: StoreError['kind']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError(${kind}), got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    return true;
  });
}

function nextSignal(store: Store, mailboxId: number, atLeast: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no signal >= ${atLeast} within ${timeoutMs}ms`));
    }, timeoutMs);
    const off = store.changes.subscribe(mailboxId, (s) => {
      if (s.highestModseq < atLeast) return;
      clearTimeout(timer);
      off();
      resolve(s.highestModseq);
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function setup(store: Store, quotaBytes: number | null = null) {
  await store.directory.addDomain('example.test');
  const account = await store.directory.addAccount({ address: 'alice@example.test', passwordHash: null, quotaBytes });
  const inbox = await store.mailboxes.create(account.id, 'INBOX');
  return { account, inbox };
}

const probe = await createTestDatabase();
if ('skipped' in probe) {
  console.log('# postgres contract suite SKIPPED: ' + probe.skipped);
  test('postgres contract', { skip: probe.skipped }, () => {});
} else {
  after(() => probe.drop());
  runStoreContract('postgres', openHandle);
  describe('postgres backend', () => {
    test('two nodes: a write on one wakes a subscriber on the other', () =>
      withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const { inbox } = await setup(a);
        const woke = nextSignal(a, inbox.id, 2, 2000);
        await new Promise((r) => setTimeout(r, 200)); // b cannot wait for a's LISTEN: give it time
        const r = await b.messages.append(inbox.id, { content: message('cross-node') }, T0);
        assert.ok((await woke) >= r.modseq);
        assert.deepEqual(
          (await a.changes.since(inbox.id, 0)).map((c) => [c.kind, c.uid]),
          [['append', 1]],
        );
      }));

    test('the LISTEN connection comes back after it is killed and signals every subscriber', () =>
      withNodes(2, async ([a, b], db) => {
        assert.ok(a && b);
        const { inbox } = await setup(a);
        const first = nextSignal(a, inbox.id, 2, 2000);
        await new Promise((r) => setTimeout(r, 200)); // let a's first LISTEN come up
        await b.messages.append(inbox.id, { content: message('one') }, T0);
        await first;
        const resync = nextSignal(a, inbox.id, 0, 3000);
        assert.ok((await terminateSessions(db.url, 'cartero-listen')) >= 1);
        await resync;
        const later = nextSignal(a, inbox.id, 3, 3000);
        await new Promise((r) => setTimeout(r, 100));
        await b.messages.append(inbox.id, { content: message('two') }, T0);
        assert.ok((await later) >= 3);
      }));

    test('migrate run by several nodes at once applies each version exactly once', () =>
      withNodes(
        4,
        async (stores) => {
          const results = await Promise.all(stores.map((s) => s.migrate()));
          assert.deepEqual(
            results.flat().sort((x, y) => x - y),
            MIGRATIONS.map((_, i) => i + 1),
          );
          assert.deepEqual(await stores[0]!.migrate(), []);
          await stores[0]!.ping();
        },
        { migrate: false },
      ));

    test('leases across nodes: no entry twice, and one node fences the other', () =>
      withNodes(3, async (stores) => {
        const [a, b] = stores;
        assert.ok(a && b);
        for (let i = 0; i < 30; i++) await a.queue.commit({ sender: '', recipients: [{ address: `r${i}@y.test` }], content: message(`l${i}`) }, T0);
        const got = (
          await Promise.all(stores.flatMap((s, n) => [1, 2, 3].map((k) => s.queue.lease({ owner: `n${n}w${k}`, limit: 4, leaseMs: 1000, now: T0 }))))
        ).flat();
        assert.equal(got.length, 30);
        assert.equal(new Set(got.map((l) => l.entry.id)).size, 30);
        // every lease ran out; node b takes one entry over and node a's old token is fenced off
        const [again] = await b.queue.lease({ owner: 'b', limit: 1, leaseMs: 1000, now: T0 + 5000 });
        assert.ok(again);
        const stale = got.find((x) => x.entry.id === again.entry.id);
        assert.ok(stale);
        const rid = again.entry.recipients[0]!.id;
        await rejectsKind(a.queue.complete(stale.entry.id, stale.token, [{ recipientId: rid, outcome: 'done' }], T0 + 5001), 'stale_lease');
        await rejectsKind(a.queue.renew(stale.entry.id, stale.token, 1000, T0 + 5001), 'stale_lease');
        assert.deepEqual(await b.queue.complete(again.entry.id, again.token, [{ recipientId: rid, outcome: 'done' }], T0 + 5002), { pending: 0, removed: true });
        assert.deepEqual(await a.queue.counts(T0 + 5003), { active: 29, held: 0, leased: 0, due: 29 });
      }));

    test('quota holds under parallel appends to several mailboxes of one account', () =>
      withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const size = message('x'.repeat(90)).length;
        const { account, inbox } = await setup(a, size * 5);
        const other = await a.mailboxes.create(account.id, 'Other');
        const results = await Promise.allSettled(
          Array.from({ length: 16 }, (_, i) =>
            (i % 2 ? a : b).messages.append(i % 3 ? inbox.id : other.id, { content: message(String(i % 10).repeat(90)) }, T0),
          ),
        );
        const ok = results.filter((r) => r.status === 'fulfilled').length;
        assert.equal(ok, 5);
        for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof StoreError && r.reason.kind === 'over_quota');
        const q = await b.messages.quota(account.id);
        assert.equal(q.bytes, size * 5);
      }));

    test('moves in opposite directions at once neither deadlock nor lose messages', () =>
      withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const { account, inbox } = await setup(a);
        const other = await a.mailboxes.create(account.id, 'Other');
        for (let i = 0; i < 20; i++) {
          await a.messages.append(inbox.id, { content: message(`i${i}`) }, T0);
          await a.messages.append(other.id, { content: message(`o${i}`) }, T0);
        }
        const all = [{ from: 1, to: Number.MAX_SAFE_INTEGER }];
        await Promise.all([
          ...Array.from({ length: 5 }, () => a.messages.move(inbox.id, all, other.id, T0)),
          ...Array.from({ length: 5 }, () => b.messages.move(other.id, all, inbox.id, T0)),
        ]);
        const [x, y] = [await a.mailboxes.getById(inbox.id), await a.mailboxes.getById(other.id)];
        assert.equal((x?.messages ?? 0) + (y?.messages ?? 0), 40);
        assert.equal((await a.messages.list(inbox.id)).length, x?.messages);
        assert.equal((await a.messages.quota(account.id)).messages, 40);
      }));

    test('an unreachable server is `unavailable`, not a driver error', async () => {
      const port = await closedPort();
      const store = await openStore({ backend: 'postgres', url: `postgres://postgres@127.0.0.1:${port}/postgres` }, { migrate: false });
      try {
        await rejectsKind(store.ping(), 'unavailable');
        await rejectsKind(store.migrate(), 'unavailable');
        await rejectsKind(store.queue.commit({ sender: '', recipients: [{ address: 'r@y.test' }], content: message('x') }, T0), 'unavailable');
        await rejectsKind(store.directory.getAccount('a@b.test'), 'unavailable');
      } finally {
        await store.close();
      }
    });

    test('a read-only server fails ping and writes with `unavailable`', () =>
      withNodes(1, async (_, db) => {
        const url = new URL(db.url);
        url.searchParams.set('options', '-c default_transaction_read_only=on');
        const ro = await openStore({ backend: 'postgres', url: url.toString() }, { migrate: false });
        try {
          await rejectsKind(ro.ping(), 'unavailable');
          await rejectsKind(ro.directory.addDomain('ro.test'), 'unavailable');
          assert.equal(await ro.directory.getDomain('ro.test'), null, 'reads still work');
        } finally {
          await ro.close();
        }
      }));

    test('sessions killed by the server are replaced transparently', () =>
      withNodes(1, async ([store], db) => {
        assert.ok(store);
        await Promise.all(Array.from({ length: 5 }, () => store.ping()));
        assert.ok((await terminateSessions(db.url, 'cartero')) >= 1);
        await new Promise((r) => setTimeout(r, 50));
        await store.ping();
        await store.directory.addDomain('after.test');
      }));

    test('an expunged message keeps its idempotency key: a retried delivery stays a duplicate', () =>
      withNodes(1, async ([store]) => {
        assert.ok(store);
        const { inbox } = await setup(store);
        const first = await store.messages.append(inbox.id, { content: message('k'), idempotencyKey: 'Q9:alice', flags: ['\\Deleted'] }, T0);
        assert.deepEqual(await store.messages.expunge(inbox.id), [first.uid]);
        const again = await store.messages.append(inbox.id, { content: message('k'), idempotencyKey: 'Q9:alice' }, T0);
        assert.deepEqual(again, { ...first, duplicate: true });
        assert.equal((await store.mailboxes.getById(inbox.id))?.messages, 0);
      }));

    test('a re-created mailbox gets a new UIDVALIDITY', () =>
      withNodes(1, async ([store]) => {
        assert.ok(store);
        const { account } = await setup(store);
        const one = await store.mailboxes.create(account.id, 'Tmp');
        await store.mailboxes.delete(account.id, 'Tmp');
        const two = await store.mailboxes.create(account.id, 'Tmp');
        assert.ok(two.uidValidity > one.uidValidity);
      }));
  });
}
