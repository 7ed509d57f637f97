import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BdatChunk, BdatTotal } from './bdat.js';

test('a chunk takes exactly its size across inputs and leaves the rest', () => {
  const chunk = new BdatChunk(5);
  const a = chunk.read(Buffer.from('XXab'), 2);
  assert.deepEqual([a.piece.toString(), a.next, a.done], ['ab', 4, false]);
  const b = chunk.read(Buffer.from('c\r\n.QUIT\r\n'), 0);
  assert.deepEqual([b.piece.toString(), b.next, b.done], ['c\r\n', 3, true]);
});

test('zero-size chunk is done at once', () => {
  const r = new BdatChunk(0).read(Buffer.from('QUIT'), 0);
  assert.deepEqual([r.piece.length, r.next, r.done], [0, 0, true]);
});

test('running total against the limit', () => {
  const total = new BdatTotal(10);
  assert.equal(total.announce(6), true);
  assert.equal(total.announce(4), true);
  assert.equal(total.announce(1), false);
  assert.equal(total.overflow, true);
});
