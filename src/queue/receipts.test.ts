import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Envelope } from '../smtp/services.js';
import { keptRecipients } from '../store/receipts-common.js';
import { clientContentDigest, clientQueueId, receiptKey, receiptsFor } from './receipts.js';

const TRACE = 'Received: from a by b; Thu, 26 Nov 2026 10:00:00 +0000\r\n';
const BODY = 'Subject: x\r\n\r\nhello\r\n';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function envelope(recipients: string[], meta: Record<string, unknown> = {}): Envelope {
  return { sender: 's@remote.test', recipients: recipients.map((address) => ({ address })), meta: { xqueueid: 'Q1', trace_bytes: TRACE.length, ...meta } };
}

test('the content digest skips exactly our trace headers', () => {
  const content = Buffer.from(TRACE + BODY);
  assert.equal(clientContentDigest({ trace_bytes: TRACE.length }, content), sha(BODY));
  // another hop's Received: line (another date, another id) does not change the digest
  const other = Buffer.from(`Received: from c by d; Fri, 27 Nov 2026 11:00:00 +0000 id X\r\n${BODY}`);
  assert.equal(clientContentDigest({ trace_bytes: other.length - BODY.length }, other), sha(BODY));
});

test('a trace_bytes that cannot be right counts nothing as trace', () => {
  const content = Buffer.from(BODY);
  for (const bad of [-1, 1.5, content.length + 1, '3', null, undefined]) {
    assert.equal(clientContentDigest({ trace_bytes: bad }, content), sha(BODY), String(bad));
  }
});

test('client queue id: only a non-empty string', () => {
  assert.equal(clientQueueId({ xqueueid: 'Q1' }), 'Q1');
  for (const v of ['', 7, null, undefined, ['Q1']]) assert.equal(clientQueueId({ xqueueid: v }), null);
});

test('the key: each part matters; the recipient domain is folded, its local part is not', () => {
  const k = receiptKey('Q1', 'd1', 'Bob@Example.TEST');
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(receiptKey('Q1', 'd1', 'Bob@example.test'), k);
  assert.notEqual(receiptKey('Q1', 'd1', 'bob@example.test'), k);
  assert.notEqual(receiptKey('Q2', 'd1', 'Bob@example.test'), k);
  assert.notEqual(receiptKey('Q1', 'd2', 'Bob@example.test'), k);
  // no concatenation ambiguity between the fields
  assert.notEqual(receiptKey('Q1a', 'b', 'c@x'), receiptKey('Q1', 'ab', 'c@x'));
  assert.equal(receiptKey('Q1', 'd1', 'postmaster'), receiptKey('Q1', 'd1', 'postmaster'));
});

test('receiptsFor: none without a client queue id', () => {
  const content = Buffer.from(TRACE + BODY);
  assert.equal(receiptsFor({ ...envelope(['a@x.test']), meta: { trace_bytes: TRACE.length } }, content, [{ address: 'a@x.test' }], (g) => [g]), null);
});

test('receiptsFor: one receipt per given recipient, naming what it became; duplicates in RCPT once', () => {
  const content = Buffer.from(TRACE + BODY);
  const env = envelope(['list@example.test', 'Carol@Example.test', 'Carol@example.TEST', 'far@remote.test']);
  const queued = [{ address: 'bob@example.test' }, { address: 'carol@example.test' }, { address: 'far@remote.test' }];
  const finals = (g: string) => (g === 'list@example.test' ? ['bob@example.test', 'carol@example.test'] : [g]);
  const r = receiptsFor(env, content, queued, finals)!;
  assert.equal(r.length, 3, 'Carol@Example.test and Carol@example.TEST are one recipient');
  assert.deepEqual(r[0]!.addresses, ['bob@example.test', 'carol@example.test']);
  assert.deepEqual(r[1]!.addresses, ['carol@example.test'], 'matched without case');
  assert.deepEqual(r[2]!.addresses, ['far@remote.test']);
  assert.equal(r[0]!.key, receiptKey('Q1', sha(BODY), 'list@example.test'));
});

test('keptRecipients: a recipient goes only when every receipt naming it exists already', () => {
  const rcpts = [{ address: 'a@x' }, { address: 'b@x' }, { address: 'c@x' }, { address: 'free@x' }];
  const receipts = [
    { key: 'k1', addresses: ['a@x', 'b@x'] },
    { key: 'k2', addresses: ['b@x'] },
    { key: 'k3', addresses: ['c@x'] },
  ];
  assert.deepEqual(keptRecipients(receipts, rcpts, new Set()), { recipients: rcpts, left: [] });
  assert.deepEqual(keptRecipients(receipts, rcpts, new Set(['k1'])), { recipients: [{ address: 'b@x' }, { address: 'c@x' }, { address: 'free@x' }], left: ['a@x'] });
  assert.deepEqual(keptRecipients(receipts, rcpts, new Set(['k1', 'k2', 'k3'])), { recipients: [{ address: 'free@x' }], left: ['a@x', 'b@x', 'c@x'] });
});
