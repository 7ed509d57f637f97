import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isStoreError, openStore, type Store } from '../store/index.js';
import { provisionAccount } from './accounts.js';

const dir = mkdtempSync(join(tmpdir(), 'cartero-accounts-'));
let store: Store;

before(async () => {
  store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  await store.directory.addDomain('example.test');
});

after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a provisioned account has INBOX and the special-use mailboxes, all subscribed', async () => {
  const account = await provisionAccount(store, 'Bob@Example.test', null, 1_000_000);
  assert.equal(account.address, 'bob@example.test');
  assert.equal(account.quotaBytes, 1_000_000);
  const boxes = await store.mailboxes.list(account.id);
  assert.deepEqual(
    boxes.map((b) => [b.name, b.specialUse, b.subscribed]).sort(),
    [
      ['Archive', '\\Archive', true],
      ['Drafts', '\\Drafts', true],
      ['INBOX', null, true],
      ['Junk', '\\Junk', true],
      ['Sent', '\\Sent', true],
      ['Trash', '\\Trash', true],
    ],
  );
});

test('store errors pass through: unknown domain, existing address', async () => {
  await assert.rejects(provisionAccount(store, 'eve@nowhere.test', null), (err: unknown) => isStoreError(err, 'not_found'));
  await assert.rejects(provisionAccount(store, 'bob@example.test', null), (err: unknown) => isStoreError(err, 'exists'));
});
