import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineReader, type LineEvent } from './line-reader.js';

const COMMAND_LINE_LIMIT = 512;

/** All events from `input` cut into chunks of `size` octets. */
function readAll(input: Buffer, size: number, reader = new LineReader(COMMAND_LINE_LIMIT)): LineEvent[] {
  const events: LineEvent[] = [];
  for (let at = 0; at < input.length; at += size) {
    const chunk = input.subarray(at, at + size);
    let offset = 0;
    while (offset < chunk.length) {
      const r = reader.read(chunk, offset);
      assert.ok(r.next > offset, 'progress');
      offset = r.next;
      if (r.event) events.push(r.event);
    }
  }
  return events;
}

const describe = (e: LineEvent): string => (e.kind === 'line' ? `line:${e.text}${e.bareLf ? ' [LF]' : ''}` : `error:${e.error}`);

test('lines split at every chunk size come out the same', () => {
  const input = Buffer.from('EHLO client.example\r\nMAIL FROM:<a@b>\r\n\r\nNOOP\r\n');
  for (let size = 1; size <= input.length; size++) {
    assert.deepEqual(readAll(input, size).map(describe), ['line:EHLO client.example', 'line:MAIL FROM:<a@b>', 'line:', 'line:NOOP']);
  }
});

test('512 octets including CRLF is the limit', () => {
  const ok = Buffer.from(`NOOP ${'x'.repeat(COMMAND_LINE_LIMIT - 7)}\r\n`);
  assert.equal(ok.length, 512);
  assert.deepEqual(readAll(ok, 100).map((e) => e.kind), ['line']);
  const long = Buffer.from(`NOOP ${'x'.repeat(COMMAND_LINE_LIMIT - 6)}\r\nQUIT\r\n`);
  assert.deepEqual(readAll(long, 7).map(describe), ['error:too_long', 'line:QUIT']);
});

test('a 100 KB line is refused without being buffered, and the next line is read normally', () => {
  const reader = new LineReader(COMMAND_LINE_LIMIT);
  const input = Buffer.concat([Buffer.alloc(100 * 1024, 0x41), Buffer.from('\r\nRSET\r\n')]);
  const events: LineEvent[] = [];
  for (let at = 0; at < input.length; at += 1000) {
    const chunk = input.subarray(at, at + 1000);
    let offset = 0;
    while (offset < chunk.length) {
      const r = reader.read(chunk, offset);
      offset = r.next;
      if (r.event) events.push(r.event);
      assert.ok(reader.bufferedOctets <= COMMAND_LINE_LIMIT, `holds ${reader.bufferedOctets} octets`);
    }
  }
  assert.deepEqual(events.map(describe), ['error:too_long', 'line:RSET']);
});

test('a line ended by a bare LF is flagged, not refused here', () => {
  assert.deepEqual(readAll(Buffer.from('NOOP\nQUIT\r\n'), 3).map(describe), ['line:NOOP [LF]', 'line:QUIT']);
});

test('bare CR inside a command is an error, at any split', () => {
  const input = Buffer.from('MAIL FROM:<a@b>\rRCPT TO:<c@d>\r\nNOOP\r\n');
  for (let size = 1; size <= input.length; size++) {
    assert.deepEqual(readAll(input, size).map(describe), ['error:bare_cr', 'line:NOOP']);
  }
  assert.deepEqual(readAll(Buffer.from('NOOP\r\r\n'), 1).map(describe), ['error:bare_cr']);
});

test('NUL, other control bytes and DEL are refused', () => {
  for (const bad of ['\0', '\x01', '\t', '\x1b', '\x7f']) {
    assert.deepEqual(readAll(Buffer.from(`MAIL FROM:<a${bad}@b>\r\n`, 'latin1'), 4).map(describe), ['error:control'], JSON.stringify(bad));
  }
});

test('UTF-8 is decoded; invalid UTF-8 is refused', () => {
  assert.deepEqual(readAll(Buffer.from('RCPT TO:<jörg@exämple.test>\r\n'), 1).map(describe), ['line:RCPT TO:<jörg@exämple.test>']);
  assert.deepEqual(readAll(Buffer.from('RCPT TO:<j\xf6rg@x>\r\n', 'latin1'), 5).map(describe), ['error:bad_utf8']);
});

test('the limit can be raised for AUTH exchanges', () => {
  const reader = new LineReader(COMMAND_LINE_LIMIT);
  reader.limit = 12288;
  assert.deepEqual(readAll(Buffer.from(`${'Q'.repeat(5000)}\r\n`), 512, reader).map((e) => e.kind), ['line']);
});

test('a CR before the LF ends the line; every other CR is bare, at any split', () => {
  for (const [input, want] of [
    ['NOOP\r\n', ['line:NOOP']],
    ['NO\rOP\r\nSTAT\n', ['error:bare_cr', 'line:STAT [LF]']],
    ['\r\n', ['line:']],
    ['\r\r\n', ['error:bare_cr']],
  ] as const) {
    for (let size = 1; size <= input.length; size++) assert.deepEqual(readAll(Buffer.from(input), size).map(describe), want, `${JSON.stringify(input)} / ${size}`);
  }
});
