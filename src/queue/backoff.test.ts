import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expired, retryAt } from './backoff.js';

const s = { minimalMs: 300, maximalMs: 4000, lifetimeMs: 10_000 };

test('the wait is the message age clamped to [minimal, maximal], never past the lifetime', () => {
  assert.equal(retryAt(0, 0, s), 300);
  assert.equal(retryAt(0, 299, s), 599);
  assert.equal(retryAt(0, 1000, s), 2000);
  assert.equal(retryAt(0, 5000, s), 9000);
  assert.equal(retryAt(0, 8000, s), 10_000);
  assert.equal(retryAt(0, 9999, s), 10_000);
});

test('expiry at the lifetime mark', () => {
  assert.ok(!expired(0, 9999, s));
  assert.ok(expired(0, 10_000, s));
});
