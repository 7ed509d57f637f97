import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dotStuffed, topOf } from './dot-stuff.js';

const join = (chunks: Iterable<Buffer>): string => Buffer.concat([...chunks]).toString('latin1');

/** What a client does: strip the terminator, then remove one leading dot from each line. */
function unstuff(wire: string): string {
  assert.ok(wire.endsWith('\r\n.\r\n') || wire === '.\r\n', 'terminated');
  const body = wire === '.\r\n' ? '' : wire.slice(0, -3);
  return body.replace(/(^|\n)\./g, '$1');
}

test('lines beginning with "." get one more; the terminator follows', () => {
  const msg = '.first\r\nplain\r\n..two\r\n.\r\nlast.\r\n';
  assert.equal(join(dotStuffed(Buffer.from(msg))), '..first\r\nplain\r\n...two\r\n..\r\nlast.\r\n.\r\n');
});

test('content without a final line end gets a CRLF; empty content is just the terminator', () => {
  assert.equal(join(dotStuffed(Buffer.from('a\r\n.b'))), 'a\r\n..b\r\n.\r\n');
  assert.equal(join(dotStuffed(Buffer.alloc(0))), '.\r\n');
});

test('every chunk size gives the same bytes, chunks are bounded, and the wire unstuffs to the original', () => {
  const msg = Buffer.from('From: a\r\n\r\n.x\r\n' + '.'.repeat(10) + '\r\n' + 'y'.repeat(50) + '\r\n.\r\n..\r\nend\r\n', 'latin1');
  const reference = join(dotStuffed(msg));
  for (let size = 1; size <= 70; size++) {
    const chunks = [...dotStuffed(msg, size)];
    assert.equal(join(chunks), reference, `chunk size ${size}`);
    for (const c of chunks) assert.ok(c.length <= size + 5, `chunk of ${c.length} > ${size} + 5`);
  }
  assert.equal(unstuff(reference), msg.toString('latin1'));
});

test('a large message streams in bounded chunks with no quadratic rescans (one 8 MB line)', () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
  big[0] = 0x2e;
  const started = Date.now();
  let total = 0;
  let count = 0;
  for (const c of dotStuffed(big)) {
    assert.ok(c.length <= 64 * 1024 + 5);
    total += c.length;
    count++;
  }
  assert.equal(total, big.length + 1 + 2 + 3);
  assert.ok(count >= 128);
  assert.ok(Date.now() - started < 5000);
});

test('TOP: the header, the blank line, then at most n body lines', () => {
  const msg = Buffer.from('Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\nl3\r\n');
  assert.equal(topOf(msg, 0).toString(), 'Subject: x\r\nFrom: a\r\n\r\n');
  assert.equal(topOf(msg, 2).toString(), 'Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\n');
  assert.equal(topOf(msg, Infinity).toString(), msg.toString());
  assert.equal(topOf(msg, 1e9).toString(), msg.toString());
  assert.equal(topOf(Buffer.from('Subject: only header\r\n'), 3).toString(), 'Subject: only header\r\n');
  assert.equal(topOf(Buffer.from('\r\nbody\r\n'), 0).toString(), '\r\n');
  assert.equal(topOf(Buffer.from('A: b\n\nx\ny\n'), 1).toString(), 'A: b\n\nx\n');
  assert.equal(topOf(Buffer.from('A: b\r\n\r\nno final newline'), 5).toString(), 'A: b\r\n\r\nno final newline');
});
