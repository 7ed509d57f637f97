import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValues, imapBodyStructure, imapEnvelope, imapString, parseStructure } from './index.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));

/** A body of exactly `octets` bytes and `lines` lines (the last one without a line end when `open`). */
function body(octets: number, lines: number, open: boolean): string {
  const breaks = open ? lines - 1 : lines;
  const chars = octets - 2 * breaks;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = Math.floor(chars / lines) + (i < chars % lines ? 1 : 0);
    out.push('x'.repeat(n));
  }
  return out.join('\r\n') + (open ? '' : '\r\n');
}

const rfc3501Message = Buffer.from(
  [
    'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
    'From: Terry Gray <gray@cac.washington.edu>',
    'Subject: IMAP4rev1 WG mtg summary and minutes',
    'To: imap@cac.washington.edu',
    'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>',
    'Message-Id: <B27397-0100000@cac.washington.edu>',
    'MIME-Version: 1.0',
    'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
    '',
    '',
  ].join('\r\n') + body(3028, 92, false),
);

test('RFC 3501 §8 FETCH example: BODY, BODYSTRUCTURE and ENVELOPE', () => {
  const s = parseStructure(rfc3501Message);
  assert.equal(imapBodyStructure(s, false), '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)');
  assert.equal(imapBodyStructure(s, true), '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)');
  // the RFC's example puts a space between the two cc addresses; its grammar (env-cc = "(" 1*address ")") does not
  assert.equal(
    imapEnvelope(s),
    '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>")',
  );
});

test('RFC 3501 / 9051 multipart/mixed BODYSTRUCTURE example, exactly', () => {
  const msg = crlf(
    'From: gray@cac.washington.edu',
    'MIME-Version: 1.0',
    'Content-Type: MULTIPART/MIXED; BOUNDARY="8323328-2120168431-824156314=:325"',
    '',
    '--8323328-2120168431-824156314=:325',
    'Content-Type: TEXT/PLAIN; charset=US-ASCII',
    '',
    body(1152, 23, true),
    '--8323328-2120168431-824156314=:325',
    'Content-Type: TEXT/PLAIN; charset=US-ASCII; name="cc.diff"',
    'Content-Transfer-Encoding: BASE64',
    'Content-ID: <960723163407.20117h@cac.washington.edu>',
    'Content-Description: Compiler diff',
    '',
    body(4554, 73, true),
    '--8323328-2120168431-824156314=:325--',
    '',
  );
  const s = parseStructure(msg);
  assert.equal(
    imapBodyStructure(s, false),
    '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")',
  );
  assert.equal(
    imapBodyStructure(s, true),
    '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "8323328-2120168431-824156314=:325") NIL NIL NIL)',
  );
});

test('message/rfc822 attachment: envelope and body of the encapsulated message; extension data', () => {
  const msg = crlf(
    'Subject: fwd',
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Language: en, de',
    '',
    'see attached',
    '--b',
    'Content-Type: message/rfc822; name="orig.eml"',
    'Content-Disposition: attachment; filename="orig.eml"',
    'Content-Location: http://example.test/ orig.eml',
    'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==',
    '',
    'From: Ann <ann@example.test>',
    'Subject: original',
    '',
    'hello',
    '--b--',
  );
  const s = parseStructure(msg);
  assert.equal(
    imapBodyStructure(s, true),
    '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL ("en" "de") NIL)' +
      '("MESSAGE" "RFC822" ("NAME" "orig.eml") NIL NIL "7BIT" 56 (NIL "original" (("Ann" NIL "ann" "example.test")) (("Ann" NIL "ann" "example.test")) (("Ann" NIL "ann" "example.test")) NIL NIL NIL NIL NIL) ' +
      '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL) 4 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "orig.eml")) NIL "http://example.test/orig.eml")' +
      ' "MIXED" ("BOUNDARY" "b") NIL NIL NIL)',
  );
});

test('RFC 2231 continuations are merged; an extended value keeps its charset and the * on its name', () => {
  const msg = crlf(
    'Content-Type: application/pdf; name="plain.pdf"; name*0*=utf-8\'\'%E2%82%AC; name*1="x y.pdf"',
    "Content-Disposition: attachment; filename*0=\"long \"; filename*1=\"name.pdf\"; size=10",
    'Content-Transfer-Encoding: base64',
    '',
    'AAAA',
  );
  assert.equal(
    imapBodyStructure(parseStructure(msg), true),
    '("APPLICATION" "PDF" ("NAME" "plain.pdf" "NAME*" "utf-8\'\'%E2%82%ACx%20y.pdf") NIL NIL "BASE64" 4 NIL ("ATTACHMENT" ("FILENAME" "long name.pdf" "SIZE" "10")) NIL NIL)',
  );
});

test('ENVELOPE: group syntax, missing fields, Sender/Reply-To fallback, routes, comments, quoting', () => {
  const msg = crlf(
    'From: "Joe \\"The Man\\" \\\\ Smith" <joe@example.test>',
    'Reply-To:',
    'To: A Group:Ed Jones <c@a.test>,joe@where.test;, undisclosed-recipients:;',
    'Cc: <@relay.test,@gw.test:user@host.test>, bob@example.test (Bob Q), root',
    '',
    'x',
  );
  assert.equal(
    imapEnvelope(parseStructure(msg)),
    '(NIL NIL ' +
      '(("Joe \\"The Man\\" \\\\ Smith" NIL "joe" "example.test")) ' +
      '(("Joe \\"The Man\\" \\\\ Smith" NIL "joe" "example.test")) ' +
      '(("Joe \\"The Man\\" \\\\ Smith" NIL "joe" "example.test")) ' +
      '((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")(NIL NIL NIL NIL)(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ' +
      '((NIL "@relay.test,@gw.test" "user" "host.test")("Bob Q" NIL "bob" "example.test")(NIL NIL "root" "MISSING_DOMAIN")) ' +
      'NIL NIL NIL)',
  );
  assert.equal(imapEnvelope(parseStructure(crlf('', 'no header'))), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
});

test('encoded-word subjects stay raw in ENVELOPE and are decoded by headerValues (UTF-8 and ISO-8859-1)', () => {
  const msg = crlf(
    'Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=',
    'Subject: =?ISO-8859-1?Q?Caf=E9?= ',
    '  au lait',
    'X-Other: one',
    'x-other: two',
    '',
    'x',
  );
  const s = parseStructure(msg);
  assert.match(imapEnvelope(s), /^\(NIL "=\?UTF-8\?B\?R3LDvMOfZQ==\?= =\?UTF-8\?Q\?_aus_K=C3=B6ln\?="/);
  assert.deepEqual(headerValues(msg, s, 'SUBJECT'), ['Grüße aus Köln', 'Café   au lait']);
  assert.deepEqual(headerValues(msg, s, 'x-other'), ['one', 'two']);
  assert.deepEqual(headerValues(msg, s, 'missing'), []);
});

test('8-bit header text goes out as a literal counted in bytes', () => {
  const msg = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'utf8'), Buffer.from('\r\n\r\nx')]);
  assert.equal(imapEnvelope(parseStructure(msg)), '(NIL {7}\r\nGrüße NIL NIL NIL NIL NIL NIL NIL NIL)');
});

test('imapString: NIL, quoted with escapes, literal for 8-bit, CR, LF, NUL-free and long values', () => {
  assert.equal(imapString(null), 'NIL');
  assert.equal(imapString(''), '""');
  assert.equal(imapString('a "b" \\c'), '"a \\"b\\" \\\\c"');
  assert.equal(imapString('é'), '{2}\r\né');
  assert.equal(imapString('a\r\nb'), '{4}\r\na\r\nb');
  assert.equal(imapString('a\0b\tc'), '{4}\r\nab\tc');
  const long = 'y'.repeat(5000);
  assert.equal(imapString(long), `{5000}\r\n${long}`);
});
