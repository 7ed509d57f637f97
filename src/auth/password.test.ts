import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, isSupportedHash, needsRehash, verifyPassword } from './password.js';

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

// ---- SHA-crypt hashes brought over from Dovecot (verify only) ----

// the test vectors of "Unix crypt using SHA-256 and SHA-512" (U. Drepper), as stored after hashing
const SHA_CRYPT_VECTORS: [string, string][] = [
  ['Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  ['Hello world!', '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.'],
  ['This is just a test', '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0'],
  ['the minimum number is still observed', '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.'],
  ['Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
];

test('SHA512-CRYPT and SHA256-CRYPT hashes verify (spec test vectors), bare or with the Dovecot scheme', async () => {
  for (const [password, hash] of SHA_CRYPT_VECTORS) {
    assert.equal(isSupportedHash(hash), true, hash);
    assert.equal(await verifyPassword(password, hash), true, hash);
    assert.equal(await verifyPassword(`${password}x`, hash), false, hash);
    const scheme = hash.startsWith('$6$') ? '{SHA512-CRYPT}' : '{SHA256-CRYPT}';
    assert.equal(await verifyPassword(password, scheme + hash), true, scheme + hash);
    // legacy hashes are replaced by scrypt when the caller rehashes
    assert.equal(needsRehash(hash), true);
  }
});

test('a hash made by Dovecot (doveadm pw -s SHA512-CRYPT) verifies', async () => {
  const hash = '{SHA512-CRYPT}$6$DojcttQ0oGGqinOM$xbeR2qcy5oN/0hqguvdeRU6wpDc2itCVeqYBlUJ9F40w9hiYKL3250oFtIKk/lumVC7xqlESOC4pLrgrsBUnf.';
  assert.equal(await verifyPassword('bench password', hash), true);
  assert.equal(await verifyPassword('bench passwort', hash), false);
});

test('malformed or hostile SHA-crypt hashes verify as false without throwing', async () => {
  const good = SHA_CRYPT_VECTORS[0]![1];
  const bad = [
    '$6$',
    '$6$saltstring$',
    '$6$saltstring$short',
    `${good}x`,
    good.replace('$6$', '$7$'),
    '{SHA256-CRYPT}' + good, // scheme and id disagree
    '{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu5Rj0Tq9vq8z9p0s9Ujd9Cw7e9tRkGQe',
    '{PLAIN}secret',
    '$6$toolongsaltstring17$' + good.slice(-86), // salt over 16 characters
    '$6$rounds=999999999$saltstring$' + good.slice(-86), // rounds beyond our bound
    '$6$salt\nstring$' + good.slice(-86),
  ];
  for (const hash of bad) {
    assert.equal(isSupportedHash(hash), false, hash);
    assert.equal(await verifyPassword('Hello world!', hash), false, hash);
  }
});
