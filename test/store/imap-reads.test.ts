/*
 * The store's IMAP read paths on both backends: flagSets (SELECT's flag list without reading every
 * message), compactIndex (a session's view in typed arrays, with HIGHESTMODSEQ from the same snapshot)
 * and contents (several messages' bytes in one call, null for a gone one). Each agrees with the plain
 * index()/content() calls on the same data. The PostgreSQL half is skipped with one line when no
 * server is reachable (outside CI).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { provisionAccount } from '../../src/directory/accounts.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);

type Backend = { name: string; open(fn: (s: Store) => Promise<void>): Promise<void> };

const backends: Backend[] = [
  {
    name: 'embedded',
    async open(fn) {
      const dir = mkdtempSync(join(tmpdir(), 'cartero-imap-reads-'));
      const store = await openStore({ backend: 'embedded', path: dir });
      try {
        await fn(store);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'postgres',
    async open(fn) {
      const db = await createTestDatabase();
      if ('skipped' in db) {
        console.log(`# postgres imap read tests skipped: ${db.skipped}`);
        return;
      }
      const store = await openStore({ backend: 'postgres', url: db.url, pool_size: 2 });
      try {
        await fn(store);
      } finally {
        await store.close();
        await db.drop();
      }
    },
  },
];

const message = (i: number) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <${i}@example.test>\r\n\r\nbody ${i}\r\n`);

for (const backend of backends) {
  describe(`store IMAP read paths (${backend.name})`, () => {
    test('flagSets, compactIndex and contents agree with index() and content()', () =>
      backend.open(async (store) => {
        await store.directory.addDomain('example.test');
        const account = await provisionAccount(store, 'reads@example.test', null);
        const inbox = (await store.mailboxes.get(account.id, 'INBOX'))!;
        const flags = [['\\Seen'], [], ['\\Seen', '$Work'], ['\\Flagged'], ['\\Seen'], ['$Work', '\\Seen']];
        for (let i = 0; i < flags.length; i++) await store.messages.append(inbox.id, { content: message(i), flags: flags[i]!, internalDate: T0 + i }, T0);
        await store.messages.setFlags(inbox.id, [{ from: 2, to: 2 }], 'add', ['\\Deleted']);
        await store.messages.expunge(inbox.id, [{ from: 2, to: 2 }]);

        const sets = await store.messages.flagSets(inbox.id);
        const index = await store.messages.index(inbox.id);
        const distinct = (xs: string[][]) => [...new Set(xs.map((x) => JSON.stringify([...x].sort())))].sort();
        assert.deepEqual(distinct(sets), distinct(index.flagSets));
        assert.equal(sets.length, new Set(sets.map((x) => JSON.stringify(x))).size, 'each set once');

        const box = (await store.mailboxes.getById(inbox.id))!;
        const c = await store.messages.compactIndex(inbox.id);
        assert.ok(c.uids instanceof Float64Array && c.flags instanceof Uint32Array);
        assert.deepEqual([...c.uids], index.uids);
        assert.deepEqual([...c.modseqs], index.modseqs);
        assert.deepEqual([...c.internalDates], index.internalDates);
        assert.deepEqual([...c.sizes], index.sizes);
        assert.deepEqual(
          [...c.flags].map((f) => c.flagSets[f]),
          index.flags.map((f) => index.flagSets[f]),
        );
        assert.equal(c.highestModseq, box.highestModseq);

        const tail = await store.messages.compactIndex(inbox.id, 4);
        assert.deepEqual([...tail.uids], [4, 5, 6]);
        const none = await store.messages.compactIndex(999_999);
        assert.deepEqual([none.uids.length, none.highestModseq], [0, 0]);
        assert.deepEqual(await store.messages.flagSets(999_999), []);

        const bytes = await store.messages.contents(inbox.id, [3, 2, 1, 99]);
        assert.deepEqual(bytes[0], await store.messages.content(inbox.id, 3));
        assert.equal(bytes[1], null, 'expunged');
        assert.deepEqual(bytes[2], message(0));
        assert.equal(bytes[3], null, 'never existed');
        assert.deepEqual(await store.messages.contents(inbox.id, []), []);
        assert.deepEqual(await store.messages.contents(999_999, [1]), [null]);
      }));

    test('an empty mailbox: no flag sets, an empty compact index with its HIGHESTMODSEQ', () =>
      backend.open(async (store) => {
        await store.directory.addDomain('example.test');
        const account = await provisionAccount(store, 'empty@example.test', null);
        const box = (await store.mailboxes.get(account.id, 'Drafts'))!;
        assert.deepEqual(await store.messages.flagSets(box.id), []);
        const c = await store.messages.compactIndex(box.id);
        assert.deepEqual([c.uids.length, c.flags.length, c.flagSets.length, c.highestModseq], [0, 0, 0, box.highestModseq]);
      }));
  });
}
