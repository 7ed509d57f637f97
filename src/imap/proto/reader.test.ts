import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandReader, type ReaderEvent } from './reader.js';

function reader(maxLine = 100, appendLimit = 50, maxLiteral = 20): CommandReader {
  return new CommandReader({ maxLine, literalLimit: (c) => (c === 'APPEND' ? appendLimit : maxLiteral) });
}

function all(r: CommandReader, ...chunks: string[]): ReaderEvent[] {
  const out: ReaderEvent[] = [];
  for (const c of chunks) {
    const buf = Buffer.from(c, 'latin1');
    let off = 0;
    while (off < buf.length) {
      const { event, next } = r.read(buf, off);
      off = next;
      if (event) out.push(event);
    }
  }
  return out;
}

test('a simple command, split across chunks', () => {
  const ev = all(reader(), 'a NO', 'OP\r', '\n');
  assert.deepEqual(ev, [{ kind: 'command', parts: { texts: ['a NOOP'], literals: [] } }]);
});

test('bare LF ends a line too', () => {
  const ev = all(reader(), 'a NOOP\n');
  assert.equal(ev[0]?.kind, 'command');
});

test('synchronising literal asks for continuation, then reads exactly n bytes', () => {
  const ev = all(reader(), 'a LOGIN {5}\r\n', 'alice {3}\r\n', 'pwd\r\n');
  assert.deepEqual(ev.map((e) => e.kind), ['continue', 'continue', 'command']);
  const cmd = ev[2] as Extract<ReaderEvent, { kind: 'command' }>;
  assert.deepEqual(cmd.parts.texts, ['a LOGIN {5}', ' {3}', '']);
  assert.deepEqual(cmd.parts.literals.map(String), ['alice', 'pwd']);
});

test('non-synchronising literal (LITERAL+) needs no continuation', () => {
  const ev = all(reader(), 'a LOGIN {5+}\r\nalice {3+}\r\npwd\r\n');
  assert.deepEqual(ev.map((e) => e.kind), ['command']);
});

test('literal bytes may contain CRLF and braces', () => {
  const ev = all(reader(), 'a APPEND INBOX {12+}\r\nx\r\n{5}\r\nab\r\n\r\n');
  const cmd = ev[0] as Extract<ReaderEvent, { kind: 'command' }>;
  assert.equal(cmd.parts.literals[0]!.toString(), 'x\r\n{5}\r\nab\r\n');
});

test('zero-length literal', () => {
  const ev = all(reader(), 'a LOGIN {0}\r\n {0+}\r\n\r\n');
  assert.deepEqual(ev.map((e) => e.kind), ['continue', 'command']);
});

test('literal8 ~{n}', () => {
  const ev = all(reader(), 'a APPEND INBOX ~{3+}\r\n\0\0\0\r\n');
  const cmd = ev[0] as Extract<ReaderEvent, { kind: 'command' }>;
  assert.deepEqual([...cmd.parts.literals[0]!], [0, 0, 0]);
});

test('over-long line: BAD with the tag, reader resynchronises at the next line', () => {
  const r = reader(20);
  const ev = all(r, 'tag1 NOOP ' + 'x'.repeat(100), 'y'.repeat(100) + '\r\n', 'b NOOP\r\n');
  assert.deepEqual(ev[0], { kind: 'error', tag: 'tag1', text: 'Command line too long', fatal: false, tooBig: false });
  assert.equal(ev[1]?.kind, 'command');
});

test('line limit counts all text of a command but not literals', () => {
  const r = reader(30, 1000, 1000);
  const ev = all(r, `a LOGIN {100+}\r\n${'z'.repeat(100)} {2+}\r\nzz\r\n`);
  assert.equal(ev[0]?.kind, 'command');
  const r2 = reader(30);
  const ev2 = all(r2, 'a LOGIN {1+}\r\nz ' + 'q'.repeat(40) + '\r\n');
  assert.equal(ev2[0]?.kind, 'error');
});

test('synchronising literal over the limit: BAD before the data, not fatal', () => {
  const ev = all(reader(), 'a LOGIN {21}\r\n');
  assert.deepEqual(ev, [{ kind: 'error', tag: 'a', text: 'Literal too big (limit 20 octets)', fatal: false, tooBig: false }]);
});

test('APPEND literal over APPENDLIMIT: TOOBIG; an 8 GB announcement is refused without reading', () => {
  const ev = all(reader(), 'a APPEND INBOX {8589934592}\r\n', 'b NOOP\r\n');
  assert.equal(ev[0]?.kind, 'error');
  assert.equal((ev[0] as { tooBig: boolean }).tooBig, true);
  assert.equal(ev[1]?.kind, 'command');
});

test('UID command literal limit applies by command name', () => {
  const ev = all(reader(), 'a UID SEARCH TEXT {21}\r\n');
  assert.equal(ev[0]?.kind, 'error');
});

test('non-synchronising literal over the limit is fatal', () => {
  const ev = all(reader(), 'a LOGIN {21+}\r\n');
  assert.equal((ev[0] as { fatal: boolean }).fatal, true);
});

test('absurd literal digits are not a literal announcement', () => {
  const ev = all(reader(), 'a LOGIN {123456789012345678901}\r\n');
  assert.equal(ev[0]?.kind, 'command');
});

test('raw line mode hands the next line out verbatim', () => {
  const r = reader();
  r.expectRawLine();
  const ev = all(r, 'dGVzdA== {5}\r\n');
  assert.deepEqual(ev, [{ kind: 'raw', text: 'dGVzdA== {5}' }]);
});

test('reset drops buffered input (STARTTLS)', () => {
  const r = reader();
  all(r, 'a LOGIN {5}\r\nal');
  assert.equal(r.midCommand, true);
  r.reset();
  assert.equal(r.midCommand, false);
  assert.equal(all(r, 'b NOOP\r\n')[0]?.kind, 'command');
});
