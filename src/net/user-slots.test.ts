import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserSlots } from './user-slots.js';

test('slots per user are counted case-insensitively, bounded, and given back', () => {
  const slots = new UserSlots();
  assert.equal(slots.acquire('Alice@Example.test', 2), true);
  assert.equal(slots.acquire('alice@example.test', 2), true);
  assert.equal(slots.acquire('alice@example.test', 2), false, 'third session over a limit of 2');
  assert.equal(slots.acquire('bob@example.test', 2), true, 'other users are not affected');
  slots.release('ALICE@example.test');
  assert.equal(slots.count('alice@example.test'), 1);
  assert.equal(slots.acquire('alice@example.test', 2), true);
  slots.release('alice@example.test');
  slots.release('alice@example.test');
  slots.release('alice@example.test'); // an extra release never goes below zero
  assert.equal(slots.count('alice@example.test'), 0);
});
