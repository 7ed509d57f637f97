import assert from 'node:assert/strict';
import { test } from 'node:test';
import { charsetText, decodeTransfer } from './decode.js';
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

// ---- the raw-byte fast path must answer exactly as decoding does

test('BODY fast path: any letter case; QP, base64 and other charsets are decoded; a needle never spans two parts', () => {
  const m = crlf(
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'the XyLoPhOnE is here; price #42',
    '--b',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'a marim=',
    'ba and a =78ylo=3Dphone',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('hidden glockenspiel').toString('base64'),
    '--b',
    'Content-Type: text/plain; charset=iso-8859-1',
    '',
    'ends with vibra',
    '--b',
    'Content-Type: text/plain',
    '',
    'phone starts here',
    '--b--',
  );
  const st = parseStructure(m);
  assert.equal(textContains(m, st, 'xylophone', 'body'), true);
  assert.equal(textContains(m, st, 'PRICE #42', 'body'), true);
  assert.equal(textContains(m, st, 'marimba', 'body'), true, 'a QP soft line break inside the needle');
  assert.equal(textContains(m, st, 'xylo=phone', 'body'), true, 'QP escapes are decoded first');
  assert.equal(textContains(m, st, 'GLOCKENSPIEL', 'body'), true, 'base64 is decoded');
  assert.equal(textContains(m, st, 'vibraphone', 'body'), false, 'no match across two parts');
  assert.equal(textContains(m, st, 'content-type', 'body'), false, 'MIME headers are not body');
});

test('BODY fast path: characters that lowercase to ASCII, Latin-1 bodies and UTF-16 bodies', () => {
  const one = (body: Buffer, charset: string | null, needle: string) => {
    const m = Buffer.concat([Buffer.from(`Content-Type: text/plain${charset ? `; charset=${charset}` : ''}\r\n\r\n`), body]);
    return textContains(m, parseStructure(m), needle, 'body');
  };
  // U+212A KELVIN SIGN lowercases to "k", U+0130 to "i" + U+0307: decoding finds them, so must we
  assert.equal(one(Buffer.from('273 \u212Aelvin'), 'utf-8', 'kelvin'), true);
  assert.equal(one(Buffer.from('\u0130stanbul'), null, 'i'), true);
  assert.equal(one(Buffer.from('\u0130stanbul'), null, 'istanbul'), false);
  // not valid UTF-8: read as Latin-1, where no byte lowercases to ASCII
  assert.equal(one(Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0x4b, 0x4f, 0xc4, 0xb0]), 'utf-8', 'café ko'), true);
  assert.equal(one(Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0x4b, 0x4f]), 'utf-8', 'caf'), true);
  assert.equal(one(Buffer.from('Zebra crossing', 'utf16le'), 'utf-16le', 'ZEBRA'), true, 'a charset that is not ASCII-compatible');
  assert.equal(one(Buffer.from('Zebra crossing', 'utf16le'), 'utf-16le', 'z'), true);
  assert.equal(one(Buffer.from('Zebra crossing'), 'x-unknown', 'CROSSING'), true, 'unknown charsets read as UTF-8');
});

test('BODY fast path agrees with decoding on random bodies, needles and encodings', () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const pieces = ['a', 'B', 'c', 'ab', 'AB', 'Ab', ' ', '\r\n', '.', '=', '#', 'é', 'İ', '\u212A', 'k', 'K', 'i', 'I', '\u00ff', 'ß'];
  const encodings = [null, '7bit', '8bit', 'quoted-printable', 'base64'];
  const charsets = [null, 'utf-8', 'us-ascii', 'iso-8859-1', 'windows-1252', 'x-unknown'];
  for (let round = 0; round < 400; round++) {
    const text = Array.from({ length: 1 + rnd(30) }, () => pieces[rnd(pieces.length)]).join('');
    const enc = encodings[rnd(encodings.length)]!;
    const cs = charsets[rnd(charsets.length)]!;
    const bytes = cs === 'iso-8859-1' || cs === 'windows-1252' ? Buffer.from(text, 'latin1') : Buffer.from(text);
    const body = enc === 'base64' ? Buffer.from(bytes.toString('base64')) : enc === 'quoted-printable' ? Buffer.from(bytes.toString('latin1').replace(/=/g, '=3D')) : bytes;
    const head = `Content-Type: text/plain${cs ? `; charset=${cs}` : ''}\r\n${enc ? `Content-Transfer-Encoding: ${enc}\r\n` : ''}\r\n`;
    const m = Buffer.concat([Buffer.from(head), body]);
    const st = parseStructure(m);
    const part = st.root;
    const decoded = decodeTransfer(m.subarray(part.bodyStart, part.end), part.encoding);
    const charset = part.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
    const reference = decoded === null ? '' : charsetText(decoded, charset).toLowerCase();
    for (let q = 0; q < 6; q++) {
      const needle = q < 3 && text.length > 1 ? text.slice(rnd(text.length), rnd(text.length) + 1) : pieces[rnd(pieces.length)]! + pieces[rnd(pieces.length)]!;
      if (needle === '') continue;
      const want = decoded !== null && reference.includes(needle.toLowerCase());
      assert.equal(textContains(m, st, needle, 'body'), want, `${JSON.stringify(text)} ${enc} ${cs}: ${JSON.stringify(needle)}`);
    }
  }
});
