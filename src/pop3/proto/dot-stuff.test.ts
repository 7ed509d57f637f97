import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dotStuffed, needsStuffing, topOf } from './dot-stuff.js';

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

test('content with no line beginning with "." is sent as views of itself, not copied', () => {
  const msg = Buffer.from('Subject: a.b\r\n\r\nnot .a dot line\r\nlast. line\r\n');
  assert.equal(needsStuffing(msg), false);
  const chunks = [...dotStuffed(msg, 16)];
  for (const c of chunks.slice(0, -1)) assert.equal(c.buffer, msg.buffer, 'a view of the content');
  assert.equal(join(chunks), `${msg.toString('latin1')}.\r\n`);
  assert.equal(join(dotStuffed(Buffer.from('no final line end'))), 'no final line end\r\n.\r\n');
  // a dot after a bare LF, or at the very start, is a line start too
  assert.equal(needsStuffing(Buffer.from('a\n.b')), true);
  assert.equal(needsStuffing(Buffer.from('.a')), true);
  assert.equal(needsStuffing(Buffer.from('a\r.b')), false);
});

test('a stuffed small message takes buffers about its own size, not a whole chunk each', () => {
  const msg = Buffer.from('.a\r\n'.repeat(10));
  const chunks = [...dotStuffed(msg)];
  const body = chunks.slice(0, -1);
  // small allocations come from Node's shared pool; none is a 64 KB buffer of its own
  for (const c of body) assert.ok(c.buffer.byteLength <= Buffer.poolSize && c.length <= 51, `a ${c.buffer.byteLength}-octet buffer`);
  assert.equal(join(chunks), `${'..a\r\n'.repeat(10)}.\r\n`);
});
