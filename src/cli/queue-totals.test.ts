import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { QueueEntry, QueueRecipient } from '../store/index.js';
import { formatTotals, queueTotals, reasonKey } from './queue-totals.js';

const MIN = 60_000;
let nextId = 1;
function entry(receivedAt: number, rcpts: Partial<QueueRecipient>[], state: 'active' | 'held' = 'active'): QueueEntry {
  return {
    id: `E${nextId++}`,
    sender: 's@x.test',
    meta: {},
    blobId: 'b',
    size: 10,
    receivedAt,
    state,
    dueAt: 0,
    attempts: 0,
    leaseOwner: null,
    leaseExpiresAt: null,
    recipients: rcpts.map((r, i) => ({ id: i, address: 'x@y', orcpt: null, notify: null, state: 'pending', attempts: 0, lastError: null, ...r })),
  };
}

describe('queue totals', () => {
  test('reasonKey groups reasons that differ only in addresses, hosts, ports and numbers', () => {
    const a = reasonKey('host mx1.dead.test[192.0.2.1]:25 said: 452 4.2.2 <bob@dead.test>: mailbox full (in reply to RCPT TO command)');
    const b = reasonKey('host mx1.dead.test[192.0.2.7]:25 said: 452 4.2.2 <eve@dead.test>: mailbox full (in reply to RCPT TO command)');
    assert.equal(a, b);
    assert.equal(reasonKey('451 4.4.1 connect to 192.0.2.1 port 2525: timed out after 30s'), '451 4.4.1 connect to … port N: timed out after Ns');
    assert.equal(reasonKey(null), '(not tried yet)');
    assert.equal(reasonKey('  '), '(not tried yet)');
  });

  test('hostile reasons stay one bounded line', () => {
    const k = reasonKey(`451 4.0.0 ${'x'.repeat(5000)}\r\n250 injected\x1b[31m`);
    assert.ok(k.length <= 120);
    assert.doesNotMatch(k, /[\r\n\x1b]/);
    const text = formatTotals(queueTotals([entry(0, [{ address: 'a@evil\x1b[2J.test', lastError: 'x\ny' }])], new Set(), 0));
    assert.doesNotMatch(text, /\x1b/);
  });

  test('counts pending recipients per domain in age buckets; done and failed ones are left out', () => {
    const now = 10_000 * MIN;
    const t = queueTotals(
      [
        entry(now - 2 * MIN, [{ address: 'a@One.test' }, { address: 'b@one.test', state: 'done' }]),
        entry(now - 7 * MIN, [{ address: 'c@one.test', lastError: '451 4.3.0 later' }, { address: 'd@two.test', state: 'failed' }]),
        entry(now - 5000 * MIN, [{ address: 'e@two.test' }], 'held'),
        entry(now + MIN, [{ address: 'f@two.test' }]),
      ],
      new Set(['two.test']),
      now,
    );
    assert.equal(t.recipients, 4);
    assert.deepEqual(t.total.ages, [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(
      t.domains.map((d) => [d.domain, d.total, d.paused, d.held]),
      [
        ['one.test', 2, false, 0],
        ['two.test', 2, true, 1],
      ],
    );
    assert.deepEqual(t.reasons, [
      { reason: '(not tried yet)', count: 3, example: null },
      { reason: '451 4.3.0 later', count: 1, example: '451 4.3.0 later' },
    ]);
    assert.match(formatTotals(t), /two\.test \(paused\) +2 +1 /);
  });
});
