import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataPayload, downgradeTo7bit, has8bit, needsSmtpUtf8, quotedPrintable } from './body.js';

const s = (b: Buffer) => b.toString('latin1');

test('dot-stuffing, CRLF normalization (bare LF and bare CR), final CRLF and end-of-data line', () => {
  assert.equal(s(dataPayload(Buffer.from('a\r\n.b\r\n..\r\n.\r\n'))), 'a\r\n..b\r\n...\r\n..\r\n.\r\n');
  assert.equal(s(dataPayload(Buffer.from('.start\nx\r.\ry'))), '..start\r\nx\r\n..\r\ny\r\n.\r\n');
  assert.equal(s(dataPayload(Buffer.from(''))), '.\r\n');
  assert.equal(s(dataPayload(Buffer.from('no newline'))), 'no newline\r\n.\r\n');
  // a smuggling attempt cannot produce an end of data
  assert.equal(s(dataPayload(Buffer.from('x\n.\nMAIL FROM:<evil>\r\n'))), 'x\r\n..\r\nMAIL FROM:<evil>\r\n.\r\n');
});

test('8-bit and SMTPUTF8 detection', () => {
  assert.equal(has8bit(Buffer.from('plain')), false);
  assert.equal(has8bit(Buffer.from('café')), true);
  const msg = Buffer.from('Subject: café\r\n\r\nbody\r\n');
  assert.equal(needsSmtpUtf8('a@b.test', ['c@d.test'], msg, false), false);
  assert.equal(needsSmtpUtf8('a@b.test', ['c@d.test'], msg, true), true);
  assert.equal(needsSmtpUtf8('a@b.test', ['c@d.test'], Buffer.from('Subject: x\r\n\r\ncafé\r\n'), true), false);
  assert.equal(needsSmtpUtf8('josé@b.test', ['c@d.test'], Buffer.from('x'), false), true);
  assert.equal(needsSmtpUtf8('a@b.test', ['用户@例子.test'], Buffer.from('x'), false), true);
});

test('quoted-printable: =, 8-bit bytes, trailing white space, 76-character lines', () => {
  assert.equal(quotedPrintable(Buffer.from('a=b café \r\ntab\t', 'utf8').toString('latin1')), 'a=3Db caf=C3=A9=20\r\ntab=09');
  const long = quotedPrintable('x'.repeat(200));
  for (const line of long.split('\r\n')) assert.ok(line.length <= 76, line);
  assert.equal(long.replace(/=\r\n/g, ''), 'x'.repeat(200));
});

test('a plain 8-bit MIME text part is converted; 7-bit messages are untouched', () => {
  const seven = Buffer.from('Subject: x\r\n\r\nhello\r\n');
  const d7 = downgradeTo7bit(seven);
  assert.ok(d7.ok && d7.content === seven);
  const msg = Buffer.from('Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nolé\r\n', 'utf8');
  const d = downgradeTo7bit(msg);
  assert.ok(d.ok);
  assert.equal(s(d.content), 'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nol=C3=A9\r\n');
  assert.equal(has8bit(d.content), false);
});

test('a non-MIME 8-bit message becomes text/plain quoted-printable with its charset', () => {
  const d = downgradeTo7bit(Buffer.from('Subject: x\r\n\r\nolé\r\n', 'utf8'));
  assert.ok(d.ok);
  assert.equal(s(d.content), 'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nol=C3=A9\r\n');
  const latin = downgradeTo7bit(Buffer.from('Subject: x\r\n\r\nol\xe9\r\n', 'latin1'));
  assert.ok(latin.ok && s(latin.content).includes('charset=unknown-8bit'));
});

test('multipart: only the 8-bit parts change, boundaries, preamble and epilogue are kept', () => {
  const msg = [
    'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="BB"', '', 'preamble', '--BB', 'Content-Type: text/plain', '', 'ascii', '--BB',
    'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'ñandú', '--BB', 'Content-Type: message/rfc822', '',
    'Subject: inner', 'MIME-Version: 1.0', 'Content-Type: text/plain', '', 'zoë', '--BB--', 'epilogue', '',
  ].join('\r\n');
  const d = downgradeTo7bit(Buffer.from(msg, 'utf8'));
  assert.ok(d.ok, d.ok ? '' : d.reason);
  const expected = [
    'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="BB"', '', 'preamble', '--BB', 'Content-Type: text/plain', '', 'ascii', '--BB',
    'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', '=C3=B1and=C3=BA', '--BB', 'Content-Type: message/rfc822', '',
    'Subject: inner', 'MIME-Version: 1.0', 'Content-Type: text/plain', 'Content-Transfer-Encoding: quoted-printable', '', 'zo=C3=AB', '--BB--', 'epilogue', '',
  ].join('\r\n');
  assert.equal(s(d.content), expected);
});

test('odd structures are refused with a reason, not mangled', () => {
  const cases: [string, RegExp][] = [
    ['MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\ncafé\r\n', /without a boundary/],
    ['MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\ncafé\r\n', /outside the MIME parts/],
    ['MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\nnothing\r\n--Y\r\ncafé\r\n', /outside the MIME parts/],
    ['MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\ncafé\r\n', /base64/],
    ['MIME-Version: 1.0\r\nContent-Type: message/global\r\n\r\ncafé\r\n', /message\/global/],
  ];
  for (const [msg, why] of cases) {
    const d = downgradeTo7bit(Buffer.from(msg, 'utf8'));
    assert.equal(d.ok, false, msg);
    assert.match(d.ok ? '' : d.reason, why);
  }
  let nested = 'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncafé\r\n';
  for (let i = 0; i < 30; i++) nested = `MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n${nested}`;
  const deep = downgradeTo7bit(Buffer.from(nested, 'utf8'));
  assert.match(deep.ok ? '' : deep.reason, /nesting deeper/);
});
