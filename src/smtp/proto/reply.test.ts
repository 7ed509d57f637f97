import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReply, reply } from './reply.js';

test('single and multi-line replies with enhanced codes', () => {
  assert.equal(formatReply(reply(250, '2.1.0', 'Ok')), '250 2.1.0 Ok\r\n');
  assert.equal(formatReply(reply(250, '2.0.0', 'one', 'two', 'three')), '250-2.0.0 one\r\n250-2.0.0 two\r\n250 2.0.0 three\r\n');
  assert.equal(formatReply(reply(250, undefined, 'mx.example.test', 'PIPELINING')), '250-mx.example.test\r\n250 PIPELINING\r\n');
  assert.equal(formatReply(reply(334, undefined, '')), '334 \r\n');
});

test('text cannot inject reply lines', () => {
  assert.equal(formatReply(reply(550, '5.1.1', 'bad\r\n250 2.0.0 Ok')), '550 5.1.1 bad??250 2.0.0 Ok\r\n');
});
