import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FreshContent } from './fresh-content.js';

function clockAt(t: { now: number }) {
  return { now: () => t.now };
}

test('fresh content: taken once, then gone', () => {
  const f = new FreshContent(clockAt({ now: 0 }));
  f.offer('A', Buffer.from('abc'));
  assert.equal(f.take('A')?.toString(), 'abc');
  assert.equal(f.take('A'), undefined);
  assert.deepEqual(f.size, { entries: 0, bytes: 0 });
});

test('fresh content: bounded in bytes (oldest dropped), per message and in age', () => {
  const t = { now: 0 };
  const f = new FreshContent(clockAt(t), { maxBytes: 10, maxOne: 6, maxAgeMs: 100 });
  f.offer('A', Buffer.alloc(4));
  f.offer('B', Buffer.alloc(4));
  f.offer('C', Buffer.alloc(4)); // A goes to make room
  assert.equal(f.take('A'), undefined);
  assert.deepEqual(f.size, { entries: 2, bytes: 8 });
  f.offer('big', Buffer.alloc(7));
  assert.equal(f.take('big'), undefined, 'larger than maxOne');
  t.now = 100;
  f.offer('D', Buffer.alloc(1)); // B and C are 100 ms old: expired
  assert.equal(f.take('B'), undefined);
  assert.equal(f.take('C'), undefined);
  assert.equal(f.take('D')?.length, 1);
});
