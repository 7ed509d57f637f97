import assert from 'node:assert/strict';
import { test } from 'node:test';
import { duplicateDigest, messageIdOf } from './duplicate-digest.js';

const msg = (head: string, body: string) => Buffer.from(`${head}\r\n${body}`, 'latin1');
const HEAD = 'From: a@x.test\r\nMessage-ID: <m1@x.test>\r\nSubject: s\r\n';

test('the same Message-ID and body give one digest, whatever trace headers a node added', () => {
  const first = duplicateDigest(msg(HEAD, 'body\r\n'));
  assert.ok(first);
  assert.equal(duplicateDigest(msg(`Received: from b by c; Thu, 26 Nov 2026 10:00:00 +0000\r\nX-Other: 1\r\n${HEAD}`, 'body\r\n')), first);
  // header names are case-insensitive; the value is taken trimmed
  assert.equal(duplicateDigest(msg('message-id:    <m1@x.test>  \r\n', 'body\r\n')), first);
});

test('another body, another Message-ID or no Message-ID: never the same digest', () => {
  const first = duplicateDigest(msg(HEAD, 'body\r\n'));
  assert.notEqual(duplicateDigest(msg(HEAD, 'body!\r\n')), first, 'a sender reusing a Message-ID for new text');
  assert.notEqual(duplicateDigest(msg(HEAD.replace('m1@', 'm2@'), 'body\r\n')), first);
  assert.equal(duplicateDigest(msg('From: a@x.test\r\nSubject: s\r\n', 'body\r\n')), null);
  assert.equal(duplicateDigest(msg('Message-ID:\r\n', 'body\r\n')), null, 'an empty Message-ID');
  // only the header block counts: a Message-ID line in the body is not one
  assert.equal(duplicateDigest(msg('From: a@x.test\r\n', 'Message-ID: <m1@x.test>\r\n')), null);
});

test('folded values, LF line ends, a header block that does not end', () => {
  assert.equal(messageIdOf('Subject: s\r\nMessage-ID:\r\n <long@x.test>\r\n'), '<long@x.test>');
  assert.equal(messageIdOf('Message-Id: <a@x>\nX: y\n'), '<a@x>');
  assert.ok(duplicateDigest(Buffer.from('Message-ID: <a@x>\n\nbody\n')));
  assert.equal(duplicateDigest(Buffer.from('Message-ID: <a@x>\r\nno blank line ever')), null);
  assert.equal(duplicateDigest(Buffer.concat([Buffer.from('Message-ID: <a@x>\r\n'), Buffer.alloc(300 * 1024, 'X-Long: y\r\n'), Buffer.from('\r\nbody')])), null);
});
