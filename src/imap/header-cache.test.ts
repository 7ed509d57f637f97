import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderCache } from './header-cache.js';

test('values are kept lowercased per mailbox, field (case-insensitive) and uid', () => {
  const c = new HeaderCache(10);
  c.set(1, 'Subject', 7, ['Hello World']);
  assert.deepEqual(c.get(1, 'subject', 7), ['hello world']);
  assert.equal(c.get(2, 'subject', 7), undefined);
  assert.equal(c.get(1, 'from', 7), undefined);
  c.set(1, 'subject', 7, ['changed']); // a UID's message never changes: the first value stays
  assert.deepEqual(c.get(1, 'subject', 7), ['hello world']);
  assert.equal(c.values, 1);
});

test('bounded: the oldest filled maps go first, and a map being filled drops its own oldest entries', () => {
  const c = new HeaderCache(3);
  c.set(1, 'subject', 1, ['a']);
  c.set(1, 'subject', 2, ['b']);
  c.set(2, 'subject', 1, ['c']);
  c.set(2, 'subject', 2, ['d']);
  assert.equal(c.values, 2);
  assert.equal(c.get(1, 'subject', 1), undefined);
  assert.deepEqual(c.get(2, 'subject', 2), ['d']);
  for (let uid = 3; uid < 10; uid++) c.set(2, 'subject', uid, [`v${uid}`]);
  assert.equal(c.values, 3);
  assert.deepEqual(c.get(2, 'subject', 9), ['v9']);
  assert.equal(c.get(2, 'subject', 1), undefined);
  const off = new HeaderCache(0);
  off.set(1, 'subject', 1, ['x']);
  assert.equal(off.get(1, 'subject', 1), undefined);
});
