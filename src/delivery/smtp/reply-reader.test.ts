import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPLY_LINE_LIMIT, REPLY_LINES_LIMIT, ReplyProtocolError, ReplyReader, replyText } from './reply-reader.js';

test('single and multiline replies, split anywhere, bare LF accepted', () => {
  const r = new ReplyReader();
  const wire = '220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\n250 SIZE 1000\r\n354 go\r\n';
  const got = [];
  for (const ch of wire) got.push(...r.feed(Buffer.from(ch)));
  assert.deepEqual(got, [
    { code: 220, lines: ['mx.test ESMTP'] },
    { code: 250, lines: ['mx.test', 'PIPELINING', 'SIZE 1000'] },
    { code: 354, lines: ['go'] },
  ]);
  assert.equal(replyText({ code: 550, lines: ['5.1.1 <x>: User unknown', 'second'] }), '550 5.1.1 <x>: User unknown second');
  assert.deepEqual(new ReplyReader().feed(Buffer.from('250\r\n')), [{ code: 250, lines: [''] }]);
});

test('garbage, mixed codes, overlong lines and endless multiline replies are protocol errors', () => {
  assert.throws(() => new ReplyReader().feed(Buffer.from('hello there\r\n')), ReplyProtocolError);
  assert.throws(() => new ReplyReader().feed(Buffer.from('250-a\r\n251 b\r\n')), /code changed/);
  assert.throws(() => new ReplyReader().feed(Buffer.from('699 x\r\n')), ReplyProtocolError);
  assert.throws(() => new ReplyReader().feed(Buffer.alloc(REPLY_LINE_LIMIT + 10, 0x41)), /longer than/);
  assert.throws(() => new ReplyReader().feed(Buffer.from(`250 ${'x'.repeat(REPLY_LINE_LIMIT)}\r\n`)), /longer than/);
  const endless = new ReplyReader();
  assert.throws(() => {
    for (let i = 0; i <= REPLY_LINES_LIMIT; i++) endless.feed(Buffer.from('250-more\r\n'));
  }, /multiline reply longer/);
});

test('control characters in reply text are shown as "?"', () => {
  assert.equal(replyText({ code: 550, lines: ['bad\x1b[31m'] }), '550 bad?[31m');
});
