import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CompactIndex } from '../store/index.js';
import { VIEW_CACHE_MIN_MESSAGES, ViewCache } from './view-cache.js';

function index(n: number, highestModseq: number): CompactIndex {
  const uids = Float64Array.from({ length: n }, (_, k) => k + 1);
  return { uids, modseqs: uids.slice(), internalDates: uids.slice(), sizes: uids.slice(), flags: new Uint32Array(n), flagSets: [[]], highestModseq };
}

test('a hit only at the same HIGHESTMODSEQ', () => {
  const c = new ViewCache();
  const ix = index(VIEW_CACHE_MIN_MESSAGES, 7);
  c.put(1, ix);
  assert.equal(c.get(1, 7), ix);
  assert.equal(c.get(1, 8), null, 'changed since');
  assert.equal(c.get(2, 7), null, 'another mailbox');
  c.put(1, index(VIEW_CACHE_MIN_MESSAGES, 8));
  assert.equal(c.get(1, 7), null, 'replaced');
  assert.equal(c.get(1, 8)?.highestModseq, 8);
});

test('small mailboxes are not kept; the byte bound drops the least recently used', () => {
  const c = new ViewCache(3 * VIEW_CACHE_MIN_MESSAGES * 36 + 3 * 64);
  c.put(1, index(VIEW_CACHE_MIN_MESSAGES - 1, 1));
  assert.equal(c.size, 0);
  for (const id of [1, 2, 3]) c.put(id, index(VIEW_CACHE_MIN_MESSAGES, 1));
  assert.equal(c.size, 3);
  assert.ok(c.get(1, 1), 'touch 1: 2 is now the oldest');
  c.put(4, index(VIEW_CACHE_MIN_MESSAGES, 1));
  assert.equal(c.get(2, 1), null);
  assert.ok(c.get(1, 1) && c.get(3, 1) && c.get(4, 1));
  c.put(5, index(VIEW_CACHE_MIN_MESSAGES * 10, 1));
  assert.equal(c.get(5, 1), null, 'larger than the whole cache: not kept');
  assert.equal(c.size, 3);
});

test('flag sets: a hit only at the same HIGHESTMODSEQ; bounded in count', () => {
  const c = new ViewCache();
  c.putFlagSets(1, 5, [['\\Seen'], []]);
  assert.deepEqual(c.flagSets(1, 5), [['\\Seen'], []]);
  assert.equal(c.flagSets(1, 6), null);
  assert.equal(c.flagSets(2, 5), null);
  for (let id = 10; id < 10_020; id++) c.putFlagSets(id, 1, []);
  assert.equal(c.flagSets(1, 5), null, 'the oldest went first');
  assert.deepEqual(c.flagSets(10_019, 1), []);
});
