import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import { openTestStore, type TestStore } from '../queue/testing.js';
import type { ClientInfo, SenderVerdict } from '../smtp/services.js';
import { createSenderPolicy, type SenderPolicy } from './sender.js';

let t: TestStore;
let policy: SenderPolicy;

const submission: ClientInfo = { address: '198.51.100.7', port: 50000, helo: 'pc', tls: true, authUser: 'bob@example.test', trusted: false, submission: true };

before(async () => {
  t = await openTestStore();
  const { store } = t;
  await store.directory.addDomain('example.test');
  await provisionAccount(store, 'bob@example.test', null);
  await provisionAccount(store, 'carol@example.test', null);
  await store.directory.addAlias({ source: 'sales@example.test', targets: ['carol@example.test', 'bob+sales@example.test'] });
  await store.directory.addAlias({ source: 'team@example.test', targets: ['sales@example.test'] });
  await store.directory.addAlias({ source: 'loop1@example.test', targets: ['loop2@example.test'] });
  await store.directory.addAlias({ source: 'loop2@example.test', targets: ['loop1@example.test'] });
  await store.directory.addAlias({ source: '@example.test', targets: ['bob@example.test'] });
  policy = createSenderPolicy({ store, delimiters: '+', recursionLimit: 10 });
});

after(() => t.cleanup());

const check = (client: ClientInfo, sender: string): Promise<SenderVerdict> => policy({ client, sender });
const accepted = (v: SenderVerdict) => v.action === 'accept';
const notOwned = (sender: string, user = 'bob@example.test'): SenderVerdict => ({
  action: 'reject',
  code: 553,
  enhanced: '5.7.1',
  text: `<${sender}>: Sender address rejected: not owned by user ${user}`,
});

test('own address, any case, with a subaddress, and the null sender are allowed', async () => {
  for (const s of ['bob@example.test', 'Bob@EXAMPLE.test', 'bob+lists@example.test', '']) assert.ok(accepted(await check(submission, s)), s);
});

test('aliases that lead to the user, directly or through other aliases', async () => {
  assert.ok(accepted(await check(submission, 'sales@example.test')));
  assert.ok(accepted(await check(submission, 'team@example.test')));
  assert.ok(accepted(await check({ ...submission, authUser: 'carol@example.test' }, 'team@example.test')));
});

test('other addresses are refused with 553 5.7.1', async () => {
  assert.deepEqual(await check(submission, 'carol@example.test'), notOwned('carol@example.test'));
  assert.deepEqual(await check(submission, 'someone@remote.test'), notOwned('someone@remote.test'));
  // the catch-all points to bob but does not make every address of the domain his
  assert.deepEqual(await check(submission, 'ceo@example.test'), notOwned('ceo@example.test'));
  assert.deepEqual(await check(submission, 'loop1@example.test'), notOwned('loop1@example.test'));
  for (const tricky of ['bob@example.test.', '"bob"@example.test', 'carol%example.test@example.test', 'sales@example.test.']) {
    assert.equal((await check(submission, tricky)).action, 'reject', tricky);
  }
});

test('submission without AUTH is refused; other listeners accept any sender', async () => {
  assert.deepEqual(await check({ ...submission, authUser: null }, 'bob@example.test'), {
    action: 'reject',
    code: 530,
    enhanced: '5.7.0',
    text: 'Authentication required',
  });
  assert.ok(accepted(await check({ ...submission, submission: false }, 'carol@example.test')));
  assert.ok(accepted(await check({ ...submission, submission: false, authUser: null }, 'anyone@remote.test')));
});
