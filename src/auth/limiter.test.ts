import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthLimiter } from './limiter.js';

test('failures within the window block an address; old ones expire', () => {
  const l = new AuthLimiter({ maxFailures: 3, windowMs: 1000 });
  assert.equal(l.fail('a', 0), false);
  assert.equal(l.fail('a', 100), false);
  assert.equal(l.blocked('b', 100), false);
  assert.equal(l.fail('a', 200), true);
  assert.equal(l.blocked('a', 999), true);
  assert.equal(l.blocked('a', 1001), false);
  assert.equal(l.fail('a', 1150), false);
  assert.equal(l.blocked('a', 2300), false);
  assert.equal(l.size, 0);
});

test('memory is bounded in addresses', () => {
  const l = new AuthLimiter({ maxFailures: 2, windowMs: 1000, maxAddresses: 100 });
  for (let i = 0; i < 1000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`, 0);
  assert.equal(l.size, 100);
});
