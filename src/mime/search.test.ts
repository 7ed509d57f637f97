import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStructure, sentDate, sentDay, textContains } from './index.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));

const msg = crlf(
  'From: a@example.test',
  'Subject: =?ISO-8859-1?Q?R=E9sum=E9?= attached',
  'Content-Type: multipart/mixed; boundary=b',
  '',
  'preamble mentions zebra',
  '--b',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('Grüße aus Köln').toString('base64'),
  '--b',
  'Content-Type: text/html; charset=iso-8859-1',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '<p>Caf=E9 cr=E8me</p>',
  '--b',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  'X-Part-Note: walrus',
  '',
  Buffer.from('secret binary needle').toString('base64'),
  '--b',
  'Content-Type: message/rfc822',
  '',
  'Subject: inner penguin',
  '',
  'inner body otter',
  '--b--',
);
const s = parseStructure(msg);

test('BODY search: decoded text parts, case-insensitive, at every level', () => {
  assert.equal(textContains(msg, s, 'GRÜSSE', 'body'), false);
  assert.equal(textContains(msg, s, 'grüße AUS köln', 'body'), true);
  assert.equal(textContains(msg, s, 'CAFÉ CRÈME', 'body'), true);
  assert.equal(textContains(msg, s, 'OTTER', 'body'), true);
  assert.equal(textContains(msg, s, 'needle', 'body'), false, 'attachments are not text');
  assert.equal(textContains(msg, s, 'résumé', 'body'), false, 'headers are not body');
  assert.equal(textContains(msg, s, 'zebra', 'body'), false, 'preambles are not shown to anyone');
  assert.equal(textContains(msg, s, '', 'body'), true);
});

test('TEXT search adds decoded headers, MIME headers and encapsulated headers', () => {
  assert.equal(textContains(msg, s, 'RÉSUMÉ attached', 'text'), true);
  assert.equal(textContains(msg, s, 'walrus', 'text'), true);
  assert.equal(textContains(msg, s, 'penguin', 'text'), true);
  assert.equal(textContains(msg, s, 'köln', 'text'), true);
  assert.equal(textContains(msg, s, 'needle', 'text'), false);
});

test('unknown transfer encodings and charsets do not throw', () => {
  const odd = crlf('Content-Type: text/plain; charset=x-unknown-charset', 'Content-Transfer-Encoding: x-gzip64', '', 'abc');
  assert.equal(textContains(odd, parseStructure(odd), 'abc', 'body'), false);
  const cs = crlf('Content-Type: text/plain; charset=x-unknown-charset', '', 'abc');
  assert.equal(textContains(cs, parseStructure(cs), 'ABC', 'body'), true);
});

test('sentDate: RFC 5322 dates with zones, obsolete forms, garbage', () => {
  const at = (date: string) => sentDate(parseStructure(crlf(`Date: ${date}`, '', 'x')));
  assert.equal(at('Wed, 17 Jul 1996 02:23:25 -0700 (PDT)'), Date.UTC(1996, 6, 17, 9, 23, 25));
  assert.equal(at('17 Jul 96 02:23 PDT'), Date.UTC(1996, 6, 17, 9, 23));
  assert.equal(at('Mon, 1 Jan 2024 00:00:00 +0530'), Date.UTC(2023, 11, 31, 18, 30));
  assert.equal(at('1 Jan 05 10:00:00 GMT'), Date.UTC(2005, 0, 1, 10));
  assert.equal(at('yesterday'), null);
  assert.equal(sentDate(parseStructure(crlf('', 'x'))), null);
  assert.deepEqual(sentDay(parseStructure(crlf('Date: Mon, 1 Jan 2024 00:30:00 +0530', '', 'x'))), { year: 2024, month: 1, day: 1 });
});
