/*
 * Lookup maps kept in the store (MapStore) on both backends, and the routing source on top of them
 * (routing/store-map.ts): set/get/delete/list paging/replace/generations, every bad input refused with
 * `invalid`, and a StoreMap that serves a change made through another Store instance (another node on
 * PostgreSQL, another process's connection on the embedded store) after one watcher poll.
 * The PostgreSQL half is skipped with one line when no server is reachable (outside CI).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { StoreMap, StoreMapWatcher } from '../../src/routing/store-map.js';
import { transportProblem } from '../../src/routing/transport.js';
import { isStoreError, openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);

type Pair = { a: Store; b: Store };
type Backend = { name: string; open(fn: (p: Pair) => Promise<void>): Promise<void> | void };

const backends: Backend[] = [
  {
    name: 'embedded',
    async open(fn) {
      const dir = mkdtempSync(join(tmpdir(), 'cartero-maps-'));
      const a = await openStore({ backend: 'embedded', path: dir }, { migrate: true });
      const b = await openStore({ backend: 'embedded', path: dir }, { migrate: false });
      try {
        await fn({ a, b });
      } finally {
        await a.close();
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'postgres',
    async open(fn) {
      const db = await createTestDatabase();
      if ('skipped' in db) {
        console.log(`# postgres map tests skipped: ${db.skipped}`);
        return;
      }
      const a = await openStore({ backend: 'postgres', url: db.url, pool_size: 2 }, { migrate: true });
      const b = await openStore({ backend: 'postgres', url: db.url, pool_size: 2 }, { migrate: false });
      try {
        await fn({ a, b });
      } finally {
        await a.close();
        await b.close();
        await db.drop();
      }
    },
  },
];

async function rejectsInvalid(work: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => isStoreError(err, 'invalid') && pattern.test(err.message));
}

for (const backend of backends) {
  describe(`MapStore (${backend.name})`, () => {
    test('set, get, delete, list in pages, generations, maps', () =>
      backend.open(async ({ a, b }) => {
        assert.deepEqual(await a.maps.generations(['virtual']), { virtual: 0 });
        assert.deepEqual(await a.maps.set('Virtual', 'Info@Example.TEST', '  bob@example.test ', 'alice (pid 1) on mx1', T0), { created: true, generation: 1 });
        assert.deepEqual(await a.maps.get('virtual', 'info@example.test'), { key: 'info@example.test', value: 'bob@example.test', updatedAt: T0, updatedBy: 'alice (pid 1) on mx1' });
        assert.deepEqual(await b.maps.set('virtual', 'info@example.test', 'carol@example.test', null, T0 + 1), { created: false, generation: 2 });
        assert.equal((await a.maps.get('VIRTUAL', 'INFO@example.test'))?.value, 'carol@example.test');
        assert.equal(await a.maps.get('virtual', 'nobody@example.test'), null);
        assert.equal(await a.maps.get('other', 'info@example.test'), null, 'maps are separate');

        for (let i = 0; i < 25; i++) await a.maps.set('transport', `d${String(i).padStart(2, '0')}.test`, 'smtp:[gw.test]', null, T0);
        const first = await a.maps.list('transport', { limit: 10 });
        assert.deepEqual(first.map((e) => e.key).slice(0, 2), ['d00.test', 'd01.test']);
        const second = await a.maps.list('transport', { after: first[9]!.key, limit: 10 });
        assert.equal(second[0]!.key, 'd10.test');
        assert.equal((await a.maps.list('transport')).length, 25);
        assert.deepEqual(await b.maps.generations(['transport', 'virtual', 'never']), { transport: 25, virtual: 2, never: 0 });

        assert.equal(await a.maps.delete('virtual', 'INFO@example.test', null, T0 + 2), 3);
        await assert.rejects(a.maps.delete('virtual', 'info@example.test', null, T0 + 3), (err: unknown) => isStoreError(err, 'not_found'));
        assert.deepEqual(
          (await a.maps.maps()).map((m) => [m.name, m.entries, m.generation]),
          [
            ['transport', 25, 25],
            ['virtual', 0, 3],
          ],
        );
      }));

    test('replace: one transaction, unchanged entries keep their time, counts', () =>
      backend.open(async ({ a }) => {
        await a.maps.set('virtual', 'keep@x.test', 'k@y.test', 'old', T0);
        await a.maps.set('virtual', 'change@x.test', 'c@y.test', 'old', T0);
        await a.maps.set('virtual', 'drop@x.test', 'd@y.test', 'old', T0);
        const r = await a.maps.replace(
          'virtual',
          [
            { key: 'KEEP@x.test', value: 'k@y.test' },
            { key: 'change@x.test', value: 'c2@y.test' },
            { key: 'new@x.test', value: 'n@y.test' },
          ],
          'importer',
          T0 + 10,
        );
        assert.deepEqual(r, { added: 1, changed: 1, removed: 1, unchanged: 1, generation: 4 });
        const all = await a.maps.list('virtual');
        assert.deepEqual(
          all.map((e) => [e.key, e.value, e.updatedAt, e.updatedBy]),
          [
            ['change@x.test', 'c2@y.test', T0 + 10, 'importer'],
            ['keep@x.test', 'k@y.test', T0, 'old'],
            ['new@x.test', 'n@y.test', T0 + 10, 'importer'],
          ],
        );
        // a duplicate key refuses the whole import: nothing changes
        await rejectsInvalid(
          a.maps.replace(
            'virtual',
            [
              { key: 'a@x.test', value: 'b' },
              { key: 'A@x.test', value: 'c' },
            ],
            null,
            T0 + 20,
          ),
          /given twice/,
        );
        assert.equal((await a.maps.list('virtual')).length, 3);
        assert.deepEqual(await a.maps.replace('virtual', [], null, T0 + 30), { added: 0, changed: 0, removed: 3, unchanged: 0, generation: 5 });
      }));

    test('bad names, keys, values and limits are `invalid`', () =>
      backend.open(async ({ a }) => {
        await rejectsInvalid(a.maps.set('bad name', 'k', 'v', null, T0), /invalid map name/);
        await rejectsInvalid(a.maps.set('', 'k', 'v', null, T0), /invalid map name/);
        await rejectsInvalid(a.maps.set('-x', 'k', 'v', null, T0), /invalid map name/);
        await rejectsInvalid(a.maps.set('m', '', 'v', null, T0), /empty/);
        await rejectsInvalid(a.maps.set('m', 'two words', 'v', null, T0), /one word/);
        await rejectsInvalid(a.maps.set('m', 'k\u0001', 'v', null, T0), /one word/);
        await rejectsInvalid(a.maps.set('m', 'k'.repeat(2000), 'v', null, T0), /longer/);
        await rejectsInvalid(a.maps.set('m', 'k', '   ', null, T0), /empty value/);
        await rejectsInvalid(a.maps.set('m', 'k', 'a\nRCPT TO:<x>', null, T0), /line breaks/);
        await rejectsInvalid(a.maps.set('m', 'k', 'v'.repeat(70_000), null, T0), /longer/);
        await rejectsInvalid(a.maps.list('m', { limit: 0 }), /limit/);
        await rejectsInvalid(a.maps.generations(['ok', 'not ok']), /invalid map name/);
        assert.deepEqual(await a.maps.maps(), [], 'nothing was written');
      }));

    test('StoreMap serves another node’s change after one poll; a bad value is logged and served', () =>
      backend.open(async ({ a, b }) => {
        await a.maps.set('transport', 'example.test', 'smtp:[one.test]', null, T0);
        const logged: string[] = [];
        const logger = { error: (_o: unknown, m: string) => logged.push(m), info: () => {}, warn: (_o: unknown, m: string) => logged.push(m) };
        const map = await StoreMap.open('transport', b.maps, { check: transportProblem, logger: logger as never });
        assert.equal(map.name, 'store:transport');
        assert.equal(await map.get('EXAMPLE.test'), 'smtp:[one.test]');
        const watcher = new StoreMapWatcher(b.maps, [map], { intervalMs: 50, logger: logger as never });
        await a.maps.set('transport', 'example.test', 'smtp:[two.test]', null, T0 + 1);
        await a.maps.set('transport', 'broken.test', 'nonsense:x', null, T0 + 1);
        assert.equal(await map.get('example.test'), 'smtp:[one.test]', 'served from memory until the poll');
        await watcher.poll();
        assert.equal(await map.get('example.test'), 'smtp:[two.test]');
        assert.equal(await map.get('broken.test'), 'nonsense:x', 'a bad value is served: the router defers it');
        assert.match(logged.join('\n'), /store:transport: entry broken\.test: .*unknown transport "nonsense"/);
        // the timer also picks changes up on its own
        watcher.start();
        await a.maps.delete('transport', 'broken.test', null, T0 + 2);
        const deadline = Date.now() + 2000;
        while ((await map.get('broken.test')) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await map.get('broken.test'), null);
        await watcher.close();
      }));
  });
}

test('StoreMap: a store that fails keeps the previous table and is logged once', async () => {
  let fail = false;
  let generation = 1;
  const reader = {
    generations: async (names: readonly string[]) => {
      if (fail) throw new Error('connection refused');
      return Object.fromEntries(names.map((n) => [n, generation]));
    },
    list: async () => (fail ? Promise.reject(new Error('connection refused')) : [{ key: 'a', value: 'b', updatedAt: 0, updatedBy: null }]),
  };
  const warnings: string[] = [];
  const logger = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {}, error: () => {} };
  const map = await StoreMap.open('m', reader);
  const watcher = new StoreMapWatcher(reader, [map], { logger: logger as never });
  fail = true;
  generation = 2;
  await watcher.poll();
  await watcher.poll();
  assert.equal(await map.get('a'), 'b');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /previous tables kept: connection refused/);
  await assert.rejects(map.reload(), /store:m: cannot read the map from the store \(connection refused\)/);
  fail = false;
  await watcher.poll();
  assert.equal(map.generation, 2);
});
