import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchesOf } from './message.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('batchesOf: count and byte limits, a large message alone', () => {
  assert.deepEqual(batchesOf(range(5), [1, 1, 1, 1, 1], 2, 100), [[0, 1], [2, 3], [4]]);
  assert.deepEqual(batchesOf(range(4), [10, 10, 50, 10], 10, 25), [[0, 1], [2], [3]]);
  assert.deepEqual(batchesOf([], [], 10, 10), []);
});

test('batchesOf: with a first count, batches double up to the maximum', () => {
  const sizes = new Array<number>(100).fill(1);
  const lengths = batchesOf(range(100), sizes, 32, 1_000, 4).map((b) => b.length);
  assert.deepEqual(lengths, [4, 8, 16, 32, 32, 8]);
  // every index once, in order
  assert.deepEqual(batchesOf(range(100), sizes, 32, 1_000, 4).flat(), range(100));
});
