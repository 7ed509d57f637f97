import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import { openTestStore, type TestStore } from '../queue/testing.js';
import { createAuthenticator, type Authenticator } from './authenticate.js';
import { hashPassword } from './password.js';

let t: TestStore;
let auth: Authenticator;

before(async () => {
  t = await openTestStore();
  await t.store.directory.addDomain('example.test');
  await provisionAccount(t.store, 'bob@example.test', await hashPassword('correct horse'));
  await provisionAccount(t.store, 'nologin@example.test', null);
  auth = createAuthenticator(t.store);
});

after(() => t.cleanup());

test('the right password gives the canonical address', async () => {
  assert.equal(await auth('bob@example.test', 'correct horse'), 'bob@example.test');
  assert.equal(await auth('BOB@Example.TEST', 'correct horse'), 'bob@example.test');
});

test('wrong password, unknown user, no password, malformed user: null', async () => {
  assert.equal(await auth('bob@example.test', 'Correct horse'), null);
  assert.equal(await auth('bob@example.test', ''), null);
  assert.equal(await auth('nobody@example.test', 'correct horse'), null);
  assert.equal(await auth('nologin@example.test', ''), null);
  assert.equal(await auth('bob', 'correct horse'), null);
  assert.equal(await auth('"bob"@example.test', 'correct horse'), null);
  assert.equal(await auth('bob@example.test.', 'x'), null);
});

test('an unknown user costs about as much as a known one (a scrypt run either way)', async () => {
  const time = async (user: string): Promise<number> => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 3; i++) await auth(user, 'wrong password');
    return Number(process.hrtime.bigint() - start) / 3e6;
  };
  await time('nobody@example.test'); // makes the dummy hash
  const known = await time('bob@example.test');
  const unknown = await time('nobody@example.test');
  const noDomain = await time('nobody');
  // generous bounds: scrypt dominates; a skipped verify would be ~100x faster
  for (const ms of [unknown, noDomain]) assert.ok(ms > known / 3 && ms < known * 3, `known ${known} ms, other ${ms} ms`);
});
