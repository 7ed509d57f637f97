import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TtlCache } from './ttl-cache.js';

test('a value lives for the ttl, then is gone', () => {
  const c = new TtlCache<number>(1000);
  c.set('a', 1, 0);
  assert.equal(c.get('a', 999), 1);
  assert.equal(c.get('a', 1000), undefined);
  assert.equal(c.get('a', 0), undefined, 'expired entries are removed');
});

test('past the size bound the cache starts over; delete forgets one key', () => {
  const c = new TtlCache<number>(1000, 2);
  c.set('a', 1, 0);
  c.set('b', 2, 0);
  c.set('c', 3, 0);
  assert.deepEqual([c.get('a', 1), c.get('b', 1), c.get('c', 1)], [undefined, undefined, 3]);
  c.delete('c');
  assert.equal(c.get('c', 1), undefined);
});
