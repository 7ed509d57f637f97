import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPlainDomain, isPlainLocalPart, recipientKey, splitAddress, stripSubaddress } from './address.js';
import { createNetworkMatcher } from './mynetworks.js';

test('splitAddress splits at the last @ and lowercases only the domain', () => {
  assert.deepEqual(splitAddress('Bob@Example.TEST'), { local: 'Bob', domain: 'example.test' });
  assert.deepEqual(splitAddress('"a@b"@example.test'), { local: '"a@b"', domain: 'example.test' });
  assert.deepEqual(splitAddress('u@example.test.'), { local: 'u', domain: 'example.test.' });
  assert.deepEqual(splitAddress('u@[127.0.0.1]'), { local: 'u', domain: '[127.0.0.1]' });
  assert.equal(splitAddress('postmaster'), null);
  assert.equal(splitAddress('bob@'), null);
});

test('plain local parts exclude routing syntax, quotes and bad dots', () => {
  for (const ok of ['bob', 'bob.smith', 'bob+tag', "o'neil", 'jörg', 'a-b_c=d']) assert.ok(isPlainLocalPart(ok), ok);
  for (const bad of ['user%other', 'other!user', '"a@b"', 'a@b', '"bob"', '.bob', 'bob.', 'a..b', 'a b', 'a\\b', '', 'x'.repeat(65), 'a\u0085b']) {
    assert.ok(!isPlainLocalPart(bad), bad);
  }
});

test('plain domains exclude trailing dots and address literals', () => {
  assert.ok(isPlainDomain('example.test'));
  assert.ok(!isPlainDomain('example.test.'));
  assert.ok(!isPlainDomain('[127.0.0.1]'));
  assert.ok(!isPlainDomain('a..b'));
});

test('subaddress stripping with one or several delimiter characters', () => {
  assert.equal(stripSubaddress('bob+tag', '+'), 'bob');
  assert.equal(stripSubaddress('bob+a+b', '+'), 'bob');
  assert.equal(stripSubaddress('bob-tag', '+-'), 'bob');
  assert.equal(stripSubaddress('bob', '+'), null);
  assert.equal(stripSubaddress('+bob', '+'), null);
  assert.equal(stripSubaddress('bob+tag', ''), null);
});

test('recipient keys fold the domain only', () => {
  assert.equal(recipientKey('Bob@EXAMPLE.test'), 'Bob@example.test');
  assert.notEqual(recipientKey('Bob@x.test'), recipientKey('bob@x.test'));
});

test('mynetworks matcher: IPv4, IPv6, mapped addresses, garbage', () => {
  const m = createNetworkMatcher(['127.0.0.0/8', '10.1.0.0/16', '2001:db8::/32', '::1']);
  assert.ok(m('127.0.0.1'));
  assert.ok(m('10.1.200.3'));
  assert.ok(!m('10.2.0.1'));
  assert.ok(m('::ffff:10.1.0.9'));
  assert.ok(m('2001:db8:1::5'));
  assert.ok(m('[::1]'));
  assert.ok(!m('2001:db9::1'));
  assert.ok(!m('fe80::1%eth0'));
  assert.ok(!m('not an address'));
  assert.ok(!createNetworkMatcher([])('127.0.0.1'));
});
