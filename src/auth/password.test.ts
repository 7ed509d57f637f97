import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, needsRehash, verifyPassword } from './password.js';

test('hash is self-describing and verifies', async () => {
  const hash = await hashPassword('correct horse battery staple');
  assert.match(hash, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  assert.equal(await verifyPassword('correct horse battery staple', hash), true);
  assert.equal(await verifyPassword('correct horse battery stapl', hash), false);
  assert.equal(needsRehash(hash), false);
});

test('salts differ, so equal passwords give different hashes', async () => {
  assert.notEqual(await hashPassword('x'), await hashPassword('x'));
});

test('unicode passwords are normalised (NFC) before hashing', async () => {
  const hash = await hashPassword('caf\u00e9');
  assert.equal(await verifyPassword('cafe\u0301', hash), true);
});

test('malformed or hostile hashes verify as false without throwing', async () => {
  const good = await hashPassword('pw');
  const [, , , salt, key] = good.split('$');
  const bad = [
    '',
    'plain',
    '$scrypt$',
    '$scrypt$N=16384,r=8,p=1$$',
    `$scrypt$N=16385,r=8,p=1$${salt}$${key}`,
    `$scrypt$N=1073741824,r=8,p=1$${salt}$${key}`,
    `$scrypt$N=16384,r=999,p=1$${salt}$${key}`,
    `$scrypt$N=16384,r=8,p=1$${salt}$AAAA`,
    `$argon2id$v=19$m=65536,t=3,p=4$${salt}$${key}`,
  ];
  for (const hash of bad) assert.equal(await verifyPassword('pw', hash), false, hash);
  assert.equal(await verifyPassword('pw', null), false);
  assert.equal(needsRehash('$scrypt$N=1024,r=8,p=1$' + salt + '$' + key), true);
});
