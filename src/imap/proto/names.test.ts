import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDateTime, parseDate, parseDateTime } from './dates.js';
import { decodeMailboxName, encodeMailboxName, validateMailboxName } from './mailbox-name.js';
import { decodeMutf7, encodeMutf7 } from './mutf7.js';
import { astring, imapString } from './response.js';

test('modified UTF-7 round trips (RFC 3501 example)', () => {
  assert.equal(encodeMutf7('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMutf7('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語');
  assert.equal(encodeMutf7('a&b'), 'a&-b');
  assert.equal(decodeMutf7('a&-b'), 'a&b');
  assert.equal(decodeMutf7(encodeMutf7('Entwürfe 😀')), 'Entwürfe 😀');
});

for (const bad of ['&U,BTFw', '&Jjo!-', '&AGE-', 'caf\u00e9']) {
  test(`rejects modified UTF-7 ${JSON.stringify(bad)}`, () => assert.throws(() => decodeMutf7(bad)));
}

test('INBOX is case-insensitive; UTF-8 names pass through after UTF8=ACCEPT', () => {
  assert.equal(decodeMailboxName('inbox', false), 'INBOX');
  assert.equal(decodeMailboxName('InBoX/x', false), 'INBOX/x');
  assert.equal(decodeMailboxName('Entwürfe', true), 'Entwürfe');
  assert.equal(encodeMailboxName('Entwürfe', false), 'Entw&APw-rfe');
});

for (const bad of ['', '/a', 'a/', 'a//b', 'a/../b', '..', '.', 'a\x01b', 'a\x7fb', 'a*', 'b%', 'x'.repeat(600)]) {
  test(`rejects mailbox name ${JSON.stringify(bad.slice(0, 20))}`, () => assert.throws(() => validateMailboxName(bad)));
}

test('dates and date-times', () => {
  assert.equal(parseDate('1-Feb-1994'), Date.UTC(1994, 1, 1));
  assert.equal(parseDateTime('17-Jul-1996 02:44:25 -0700'), Date.UTC(1996, 6, 17, 9, 44, 25));
  assert.equal(parseDateTime(' 7-Jul-1996 02:44:25 +0000'), Date.UTC(1996, 6, 7, 2, 44, 25));
  assert.equal(formatDateTime(Date.UTC(2024, 2, 5, 9, 4, 5)), '05-Mar-2024 09:04:05 +0000');
  for (const bad of ['30-Feb-2024', '1-Xyz-2024', '2024-01-01', '1-Jan-2024 25:00:00 +0000', '1-Jan-2024 10:00:00']) {
    assert.throws(() => (bad.includes(':') ? parseDateTime(bad) : parseDate(bad)), Error, bad);
  }
});

test('strings are quoted or sent as literals when unsafe', () => {
  assert.equal(imapString('a "b" \\c'), '"a \\"b\\" \\\\c"');
  assert.equal(imapString('a\r\nb'), '{4}\r\na\r\nb');
  assert.equal(imapString('café'), '{5}\r\ncafé');
  assert.equal(imapString('café', true), '"café"');
  assert.equal(astring('INBOX'), 'INBOX');
  assert.equal(astring('My Box'), '"My Box"');
  assert.equal(astring('NIL'), '"NIL"');
});
