import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageContent } from './content.js';

test('small pieces are packed, large ones kept, order and bytes preserved', () => {
  const c = new MessageContent();
  const expected: Buffer[] = [];
  let seed = 1;
  for (let i = 0; i < 3000; i++) {
    seed = (seed * 48271) % 2147483647;
    const piece = Buffer.alloc(seed % 7 === 0 ? 10_000 + (seed % 5000) : 1 + (seed % 50), i % 256);
    c.push(piece);
    expected.push(piece);
  }
  const all = Buffer.concat(expected);
  assert.equal(c.size, all.length);
  assert.ok(c.toBuffer().equals(all));
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.toBuffer().length, 0);
});

test('one-byte pieces end up in few blocks', () => {
  const c = new MessageContent();
  for (let i = 0; i < 200_000; i++) c.push(Buffer.from([i & 0xff]));
  const parts = (c as unknown as { parts: Buffer[] }).parts;
  // blocks of 8, 16, 32 KB, then 64 KB each: 200,000 octets fit in 6
  assert.ok(parts.length <= 6, `${parts.length} parts`);
  assert.equal(c.toBuffer().length, 200_000);
});

test('MessageContent: a prefix goes in front of large and small pieces in one buffer', () => {
  const c = new MessageContent();
  const big = Buffer.alloc(20_000, 0x61);
  c.push(Buffer.from('ab'));
  c.push(big);
  c.push(Buffer.from('cd'));
  const prefix = Buffer.from('Received: x\r\n');
  const out = c.toBuffer(prefix);
  assert.ok(out.equals(Buffer.concat([prefix, Buffer.from('ab'), big, Buffer.from('cd')])));
  // the message itself is unchanged and can still be read without the prefix
  assert.equal(c.toBuffer().length, 20_004);
  assert.ok(new MessageContent().toBuffer(prefix).equals(prefix));
});
