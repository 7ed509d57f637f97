/*
 * Queue receipts (docs/xqueueid.md) on both backends: a client that names its queue entry (XQUEUEID)
 * and sends the same bytes again gets no second queue entry for the recipients it already handed us.
 * Through the real commit path (src/queue/commit.ts: rewriting, alias expansion) and through the store
 * API (concurrent identical commits, bad receipts, pruning). The PostgreSQL half is skipped with one line
 * when no server is reachable (outside CI).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiptPruneJob } from '../../src/cluster/jobs.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { buildPipeline, captureLogger, ManualClock, type LogRecord } from '../../src/queue/testing.js';
import type { Envelope } from '../../src/smtp/services.js';
import { StoreError } from '../../src/store/errors.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

interface Backend {
  name: string;
  open(): Promise<{ store: Store; close(): Promise<void> } | { skipped: string }>;
}

const backends: Backend[] = [
  {
    name: 'embedded',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'cartero-receipts-'));
      const store = await openStore({ backend: 'embedded', path: dir });
      return { store, close: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
    },
  },
  {
    name: 'postgres',
    async open() {
      const db = await createTestDatabase();
      if ('skipped' in db) return db;
      const store = await openStore({ backend: 'postgres', url: db.url });
      return { store, close: async () => { await store.close(); await db.drop(); } };
    },
  },
];

const TRACE = (id: string) => `Received: from a.test (a.test [127.0.0.2]) by b.test with ESMTP id ${id}; Thu, 26 Nov 2026 10:00:00 +0000\r\n`;

/** What a session hands the commit: our trace line in front of the client's bytes. */
function received(body: string, hop: string): { content: Buffer; trace: number } {
  const trace = TRACE(hop);
  return { content: Buffer.from(`${trace}From: a@remote.test\r\nSubject: r\r\n\r\n${body}\r\n`), trace: Buffer.byteLength(trace) };
}

function envelope(recipients: string[], trace: number, xqueueid: string | null): Envelope {
  return {
    sender: 'a@remote.test',
    recipients: recipients.map((address) => ({ address })),
    meta: { client: '127.0.0.2', trace_bytes: trace, ...(xqueueid ? { xqueueid } : {}) },
  };
}

async function entries(store: Store): Promise<{ id: string; rcpts: string[] }[]> {
  return (await store.queue.list()).map((e) => ({ id: e.id, rcpts: e.recipients.map((r) => r.address) }));
}

const resendLines = (lines: LogRecord[]) => lines.filter((l) => l.status === 'resent');

for (const b of backends) {
  describe(`queue receipts: ${b.name}`, () => {
    async function withStore(fn: (store: Store) => Promise<void>, t: { skip(msg: string): void }): Promise<void> {
      const h = await b.open();
      if ('skipped' in h) return t.skip(h.skipped);
      try {
        await fn(h.store);
      } finally {
        await h.close();
      }
    }

    async function pipeline(store: Store) {
      await store.directory.addDomain('example.test');
      for (const a of ['bob@example.test', 'carol@example.test']) await provisionAccount(store, a, null);
      await store.directory.addAlias({ source: 'team@example.test', targets: ['bob@example.test', 'carol@example.test'] });
      const clock = new ManualClock();
      const { logger, lines } = captureLogger();
      const p = buildPipeline(store, clock, logger, { domains: ['example.test'] });
      return { commit: p.commit, clock, lines };
    }

    test('a resend of every recipient queues nothing and answers with the first id', (t) =>
      withStore(async (store) => {
        const { commit, clock, lines } = await pipeline(store);
        const first = received('one', 'X1');
        const a = await commit(envelope(['bob@example.test', 'far@remote.test'], first.trace, 'QID1'), first.content);
        clock.advance(1000);
        // the resend arrives with another Received: line of ours (another id, another time)
        const again = received('one', 'X2');
        const b2 = await commit(envelope(['bob@example.test', 'far@remote.test'], again.trace, 'QID1'), again.content);
        assert.equal(b2.queueId, a.queueId);
        assert.deepEqual(await entries(store), [{ id: a.queueId, rcpts: ['bob@example.test', 'far@remote.test'] }]);
        const r = resendLines(lines);
        assert.equal(r.length, 1);
        assert.equal(r[0]!.duplicate_of, a.queueId);
        assert.equal(r[0]!.client, '127.0.0.2');
        assert.deepEqual(r[0]!.recipients, ['bob@example.test', 'far@remote.test']);
        assert.match(String(r[0]!.msg), new RegExp(`status=resent \\(duplicate of ${a.queueId}, nothing queued\\)`));
      }, t));

    test('partial overlap: a new entry with only the new recipients', (t) =>
      withStore(async (store) => {
        const { commit, lines } = await pipeline(store);
        const m = received('two', 'X1');
        const a = await commit(envelope(['bob@example.test'], m.trace, 'QID2'), m.content);
        const b2 = await commit(envelope(['bob@Example.TEST', 'far@remote.test'], m.trace, 'QID2'), m.content);
        assert.notEqual(b2.queueId, a.queueId);
        const e = await entries(store);
        assert.deepEqual(e.find((x) => x.id === b2.queueId)?.rcpts, ['far@remote.test']);
        assert.match(String(resendLines(lines)[0]?.msg), /other recipients queued/);
        // and the third time nothing is new
        const c = await commit(envelope(['bob@example.test', 'far@remote.test'], m.trace, 'QID2'), m.content);
        assert.equal(c.queueId, a.queueId, 'the first duplicate names the entry');
        assert.equal((await entries(store)).length, 2);
      }, t));

    test('different bytes under the same client queue id are another message', (t) =>
      withStore(async (store) => {
        const { commit } = await pipeline(store);
        const m1 = received('three', 'X1');
        const m2 = received('three, changed', 'X1');
        const a = await commit(envelope(['bob@example.test'], m1.trace, 'QID3'), m1.content);
        const b2 = await commit(envelope(['bob@example.test'], m2.trace, 'QID3'), m2.content);
        assert.notEqual(a.queueId, b2.queueId);
        // so does another client queue id with the same bytes
        const c = await commit(envelope(['bob@example.test'], m1.trace, 'QID3b'), m1.content);
        assert.equal((await entries(store)).length, 3);
        assert.ok(![a.queueId, b2.queueId].includes(c.queueId));
      }, t));

    test('without XQUEUEID nothing changes: identical sends are two entries', (t) =>
      withStore(async (store) => {
        const { commit, lines } = await pipeline(store);
        const m = received('four', 'X1');
        await commit(envelope(['bob@example.test'], m.trace, null), m.content);
        await commit(envelope(['bob@example.test'], m.trace, null), m.content);
        assert.equal((await entries(store)).length, 2);
        assert.equal(resendLines(lines).length, 0);
      }, t));

    test('an alias is one receipt for all it expands to', (t) =>
      withStore(async (store) => {
        const { commit } = await pipeline(store);
        const m = received('five', 'X1');
        const a = await commit(envelope(['team@example.test'], m.trace, 'QID5'), m.content);
        assert.deepEqual((await entries(store))[0]?.rcpts, ['bob@example.test', 'carol@example.test']);
        const b2 = await commit(envelope(['team@example.test', 'carol@example.test'], m.trace, 'QID5'), m.content);
        // carol@ is new as a recipient given by the client: queued again on her own receipt
        assert.notEqual(b2.queueId, a.queueId);
        assert.deepEqual((await entries(store)).find((x) => x.id === b2.queueId)?.rcpts, ['carol@example.test']);
      }, t));

    test('concurrent identical commits: the unique key decides, one entry', (t) =>
      withStore(async (store) => {
        const key = randomBytes(32).toString('hex');
        const msg = { sender: 'a@remote.test', recipients: [{ address: 'x@remote.test' }], content: Buffer.from('Subject: c\r\n\r\nc\r\n'), receipts: [{ key, addresses: ['x@remote.test'] }] };
        const results = await Promise.all(Array.from({ length: 8 }, () => store.queue.commit(msg, 1000)));
        assert.equal(results.filter((r) => r.created).length, 1);
        const winner = results.find((r) => r.created)!.id;
        assert.ok(results.every((r) => r.id === winner));
        assert.ok(results.filter((r) => !r.created).every((r) => r.duplicates?.of === winner && r.duplicates.addresses[0] === 'x@remote.test'));
        assert.equal((await store.queue.list()).length, 1);
      }, t));

    test('a commit without receipts reports created, no duplicates', (t) =>
      withStore(async (store) => {
        const r = await store.queue.commit({ sender: '', recipients: [{ address: 'x@remote.test' }], content: Buffer.from('Subject: n\r\n\r\nn\r\n') }, 1000);
        assert.equal(r.created, true);
        assert.equal(r.duplicates, undefined);
      }, t));

    test('bad receipts are `invalid` and write nothing', (t) =>
      withStore(async (store) => {
        const key = 'ab'.repeat(32);
        const base = { sender: '', recipients: [{ address: 'x@remote.test' }], content: Buffer.from('Subject: b\r\n\r\nb\r\n') };
        const bad = [
          [{ key: 'not hex', addresses: ['x@remote.test'] }],
          [{ key, addresses: [] }],
          [{ key, addresses: ['stranger@remote.test'] }],
          [{ key, addresses: ['x@remote.test'] }, { key, addresses: ['x@remote.test'] }],
        ];
        for (const receipts of bad) {
          await assert.rejects(store.queue.commit({ ...base, receipts }, 1000), (err: unknown) => err instanceof StoreError && err.kind === 'invalid');
        }
        assert.equal((await store.queue.list()).length, 0);
        // the key was not taken by any of those
        assert.equal((await store.queue.commit({ ...base, receipts: [{ key, addresses: ['x@remote.test'] }] }, 1000)).created, true);
      }, t));

    test('pruneReceipts removes the old ones only; a pruned receipt no longer suppresses', (t) =>
      withStore(async (store) => {
        const content = Buffer.from('Subject: p\r\n\r\np\r\n');
        const old = 'cd'.repeat(32);
        const young = 'ef'.repeat(32);
        const one = (key: string, now: number) => store.queue.commit({ sender: '', recipients: [{ address: 'x@remote.test' }], content, receipts: [{ key, addresses: ['x@remote.test'] }] }, now);
        await one(old, 1000);
        await one(young, 5000);
        assert.equal(await store.queue.pruneReceipts(2000), 1);
        assert.equal(await store.queue.pruneReceipts(2000), 0);
        assert.equal((await one(old, 6000)).created, true);
        assert.equal((await one(young, 6000)).created, false);
      }, t));

    test('the receipt-prune singleton job removes receipts past its retention', (t) =>
      withStore(async (store) => {
        const content = Buffer.from('Subject: j\r\n\r\nj\r\n');
        await store.queue.commit({ sender: '', recipients: [{ address: 'x@remote.test' }], content, receipts: [{ key: '34'.repeat(32), addresses: ['x@remote.test'] }] }, 1000);
        const job = receiptPruneJob(store, { retentionMs: 10_000 });
        assert.equal(job.name, 'receipt-prune');
        assert.equal(await job.run(5000), null, 'young: kept');
        assert.match(String(await job.run(20_000)), /^1 queue receipts older than 10 s removed$/);
      }, t));

    test('large content (a blob file on the embedded store) with receipts', (t) =>
      withStore(async (store) => {
        const content = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(300_000, 'a'), Buffer.from('\r\n')]);
        const key = '12'.repeat(32);
        const msg = { sender: '', recipients: [{ address: 'x@remote.test' }], content, receipts: [{ key, addresses: ['x@remote.test'] }] };
        const a = await store.queue.commit(msg, 1000);
        const b2 = await store.queue.commit(msg, 2000);
        assert.equal(a.created, true);
        assert.deepEqual([b2.created, b2.id], [false, a.id]);
        assert.deepEqual(await store.queue.content(a.id), content);
      }, t));
  });
}
