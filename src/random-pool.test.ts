import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex, randomView } from './random-pool.js';

test('pooled random bytes: fresh for every call, across refills, bounded sizes', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(randomHex(7)); // 35 KB: several refills of the 4 KB block
  assert.equal(seen.size, 5000, 'no repeats');
  assert.equal(randomView(256).length, 256);
  assert.throws(() => randomView(0), RangeError);
  assert.throws(() => randomView(257), RangeError);
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 2000; i++) for (const b of randomView(64)) counts[b]!++;
  // 128,000 bytes over 256 values: every value appears (expected 500 each)
  assert.ok(counts.every((c) => c > 300 && c < 700), 'roughly uniform');
});
