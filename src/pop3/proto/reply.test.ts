import assert from 'node:assert/strict';
import { test } from 'node:test';
import { continuation, err, multiline, ok } from './reply.js';

test('status lines with response codes; control characters never reach the wire', () => {
  assert.equal(ok(), '+OK\r\n');
  assert.equal(ok('1 2'), '+OK 1 2\r\n');
  assert.equal(err('Maildrop is locked', 'IN-USE'), '-ERR [IN-USE] Maildrop is locked\r\n');
  assert.equal(err('bad\r\n+OK forged'), '-ERR bad??+OK forged\r\n');
  assert.equal(continuation(), '+ \r\n');
});

test('multi-line responses are dot-stuffed and terminated', () => {
  assert.equal(multiline('follows', ['TOP', '.hidden', 'x']), '+OK follows\r\nTOP\r\n..hidden\r\nx\r\n.\r\n');
  assert.equal(multiline('none', []), '+OK none\r\n.\r\n');
});
