/*
 * Unit tests of the maildrop's read-ahead against a stand-in store that records every read and answers
 * when told: batch sizes, the memory bound, answers without waiting once a batch is in, and skipping.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Account, Mailbox, MessageMeta, Store } from '../store/index.js';
import { Maildrop, READ_AHEAD_BYTES, READ_AHEAD_FIRST_BYTES } from './maildrop.js';

const SIZE = 8 * 1024;

function fakeStore(count: number) {
  const batches: { uids: number[]; resolve(): void }[] = [];
  const direct: number[] = [];
  const bytesOf = (uid: number) => Buffer.alloc(SIZE, uid % 256);
  const store = {
    messages: {
      contents: (_mailbox: number, uids: readonly number[]) =>
        new Promise<(Buffer | null)[]>((resolve) => {
          batches.push({ uids: [...uids], resolve: () => resolve(uids.map(bytesOf)) });
        }),
      content: async (_mailbox: number, uid: number) => {
        direct.push(uid);
        return bytesOf(uid);
      },
    },
  } as unknown as Store;
  const messages: MessageMeta[] = Array.from({ length: count }, (_, i) => ({ uid: i + 1, modseq: 1, flags: [], internalDate: 0, size: SIZE, blobId: 'x' }));
  const drop = new Maildrop(store, { address: 'a@example.test' } as Account, { id: 1, uidValidity: 1 } as Mailbox, messages, { release: async () => undefined });
  return { drop, batches, direct, messages };
}

/** Octets asked for by batches and not yet taken by content(). */
function pendingBytes(batches: { uids: number[] }[], taken: Set<number>): number {
  return batches.flatMap((b) => b.uids).filter((u) => !taken.has(u)).length * SIZE;
}

test('read-ahead: a small first batch, then doubling batches, never more than two batches held', async () => {
  const { drop, batches, messages } = fakeStore(400);
  const taken = new Set<number>();
  const first = drop.content(messages[0]!);
  assert.ok(first instanceof Promise, 'nothing read yet: the client waits');
  assert.equal(batches[0]!.uids.length * SIZE, READ_AHEAD_FIRST_BYTES, 'the first batch is small');
  assert.equal(batches[0]!.uids[0], 1);
  batches[0]!.resolve();
  assert.equal((await first)[0], 1);
  taken.add(1);
  for (const m of messages.slice(1)) {
    for (const b of batches) b.resolve();
    await new Promise((r) => setImmediate(r));
    const got = drop.content(m);
    assert.ok(Buffer.isBuffer(got), `message ${m.uid} was read ahead and is answered at once`);
    assert.equal(got[0], m.uid % 256);
    taken.add(m.uid);
    assert.ok(pendingBytes(batches, taken) <= 2 * READ_AHEAD_BYTES, `at most two batches ahead (${pendingBytes(batches, taken)})`);
  }
  const sizes = batches.map((b) => b.uids.length * SIZE);
  assert.deepEqual(sizes.slice(0, 4), [64, 128, 256, 512].map((k) => k * 1024));
  assert.ok(sizes.every((s) => s <= READ_AHEAD_BYTES));
  assert.deepEqual(batches.flatMap((b) => b.uids), messages.map((m) => m.uid), 'every message read once, in order');
});

test('read-ahead: deleted messages are not read; a jump restarts at the message asked for; a failed batch reads alone', async () => {
  const { drop, batches, direct, messages } = fakeStore(50);
  drop.mark(2);
  drop.mark(3);
  const first = drop.content(messages[0]!);
  assert.ok(!batches[0]!.uids.includes(2) && !batches[0]!.uids.includes(3));
  batches[0]!.resolve();
  await first;
  const jump = drop.content(messages[39]!);
  assert.ok(jump instanceof Promise);
  const restart = batches.find((b) => b.uids[0] === 40);
  assert.ok(restart, 'a new batch starts at the message asked for');
  restart.resolve();
  assert.equal((await jump)[0], 40);
  assert.deepEqual(direct, []);
  // a batch that fails: its messages are read one by one, as a direct read would
  const broken = fakeStore(10);
  (broken.drop as unknown as { store: { messages: { contents: () => Promise<never> } } }).store.messages.contents = () => Promise.reject(new Error('down'));
  assert.equal((await broken.drop.content(broken.messages[3]!))[0], 4);
  assert.deepEqual(broken.direct, [4]);
});
