import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { markMovable, ownsItsMemory, transferablesOf } from './transfer.js';

test('only buffers alone on their memory are moved', () => {
  const own = new Uint8Array(new ArrayBuffer(100));
  assert.equal(ownsItsMemory(own), true);
  // a pooled Buffer shares its ArrayBuffer with others: moving it would detach them
  const pooled = Buffer.from('small');
  assert.equal(ownsItsMemory(pooled), pooled.byteOffset === 0 && pooled.buffer.byteLength === pooled.length);
  assert.equal(ownsItsMemory(own.subarray(1)), false);
  assert.equal(ownsItsMemory(new Uint8Array(new SharedArrayBuffer(8))), false);
  assert.equal(ownsItsMemory(new Uint8Array(0)), false);
  assert.equal(ownsItsMemory('file'), false);
  assert.equal(ownsItsMemory(null), false);
});

test('blob values, result contents and arrays of contents are collected once each; failures and other values are not', () => {
  const a = new Uint8Array(new ArrayBuffer(10));
  const b = new Uint8Array(new ArrayBuffer(20));
  const c = new Uint8Array(new ArrayBuffer(30));
  const list = transferablesOf([
    { ok: true, value: a },
    { ok: true, value: { blobId: 'x', content: b } },
    { ok: true, value: a },
    { ok: true, value: { content: 'file' } },
    { ok: true, value: [1, 2] },
    { ok: true, value: [c, 'blob-id-in-a-file', null, a, c.subarray(1)] },
    { ok: true, value: null },
    { ok: false },
  ]);
  assert.deepEqual(list, [a.buffer, b.buffer, c.buffer]);
});

test('a moved reply arrives intact and the sender no longer holds it', async () => {
  const { port1, port2 } = new MessageChannel();
  const content = new Uint8Array(new ArrayBuffer(4096)).fill(7);
  const replies = [{ id: 1, ok: true as const, value: { blobId: 'b', content } }];
  const received = new Promise<{ replies: typeof replies }>((resolve) => port2.once('message', resolve));
  port1.postMessage({ replies }, transferablesOf(replies));
  const got = await received;
  port1.close();
  assert.equal(content.byteLength, 0, 'detached on the sending side');
  const c = got.replies[0]!.value.content;
  assert.equal(c.byteLength, 4096);
  assert.ok(c.every((x) => x === 7));
});

test('views into memory marked movable (a batch read as one buffer) move it once; unmarked views never', async () => {
  const batch = new Uint8Array(new ArrayBuffer(300)).fill(9);
  markMovable(batch);
  // a pooled buffer is never marked: its memory holds other buffers too
  const pooled = Buffer.from('pooled');
  markMovable(pooled);
  if (!ownsItsMemory(pooled)) assert.deepEqual(transferablesOf([{ ok: true, value: [pooled] }]), []);
  const other = new Uint8Array(new ArrayBuffer(50));
  const parts = [batch.subarray(0, 100), batch.subarray(100, 300), other.subarray(10)];
  const replies = [{ id: 1, ok: true as const, value: parts }];
  assert.deepEqual(transferablesOf(replies), [batch.buffer]);
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<{ replies: typeof replies }>((resolve) => port2.once('message', resolve));
  port1.postMessage({ replies }, transferablesOf(replies));
  const got = await received;
  port1.close();
  assert.equal(batch.byteLength, 0, 'the batch left the sender');
  assert.equal(other.byteLength, 50, 'the unmarked buffer was copied, not moved');
  const [a, b] = got.replies[0]!.value;
  assert.equal(a!.length, 100);
  assert.equal(b!.length, 200);
  assert.equal(a!.buffer, b!.buffer, 'the views still share one buffer');
  assert.ok(b!.every((x) => x === 9));
});
