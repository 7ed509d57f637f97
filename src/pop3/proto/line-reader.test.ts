import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineReader, type LineEvent } from './line-reader.js';

function readAll(reader: LineReader, chunks: (string | Buffer)[]): LineEvent[] {
  const events: LineEvent[] = [];
  for (const c of chunks) {
    const chunk = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
    let offset = 0;
    while (offset < chunk.length) {
      const { event, next } = reader.read(chunk, offset);
      offset = next;
      if (event) events.push(event);
    }
  }
  return events;
}

test('lines ended by CRLF or a bare LF, across chunk boundaries, one byte at a time', () => {
  const input = 'USER alice\r\nPASS a b\nSTAT\r\n';
  const whole = readAll(new LineReader(), [input]);
  assert.deepEqual(whole, [
    { kind: 'line', text: 'USER alice' },
    { kind: 'line', text: 'PASS a b' },
    { kind: 'line', text: 'STAT' },
  ]);
  assert.deepEqual(readAll(new LineReader(), [...input]), whole);
});

test('a line over the limit is dropped to its LF, reported once, memory stays bounded', () => {
  const reader = new LineReader(255);
  const events: LineEvent[] = [];
  const big = Buffer.alloc(64 * 1024, 0x78);
  for (let i = 0; i < 16; i++) {
    const { event } = reader.read(big, 0);
    assert.equal(event, null);
    assert.ok(reader.bufferedOctets <= 255);
  }
  events.push(...readAll(reader, ['\r\nNOOP\r\n']));
  assert.deepEqual(events, [{ kind: 'error', error: 'too_long' }, { kind: 'line', text: 'NOOP' }]);
});

test('exactly the limit (with CRLF) passes; one more octet does not', () => {
  const ok = `${'x'.repeat(253)}\r\n`;
  assert.deepEqual(readAll(new LineReader(255), [ok]), [{ kind: 'line', text: 'x'.repeat(253) }]);
  assert.deepEqual(readAll(new LineReader(255), [`x${ok}`]), [{ kind: 'error', error: 'too_long' }]);
});

test('NUL, other control bytes, a bare CR and bad UTF-8 are errors; the next line is read', () => {
  const events = readAll(new LineReader(), ['NO\0OP\r\n', 'NO\x01OP\r\n', 'NO\rOP\r\n', Buffer.from([0x55, 0xff, 0x0d, 0x0a]), 'NOOP\r\n']);
  assert.deepEqual(events, [
    { kind: 'error', error: 'control' },
    { kind: 'error', error: 'control' },
    { kind: 'error', error: 'control' },
    { kind: 'error', error: 'bad_utf8' },
    { kind: 'line', text: 'NOOP' },
  ]);
});

test('UTF-8 user names pass', () => {
  assert.deepEqual(readAll(new LineReader(), ['USER jörg@example.test\r\n']), [{ kind: 'line', text: 'USER jörg@example.test' }]);
});
