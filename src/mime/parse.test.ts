import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imapBodyStructure, MAX_DEPTH, MAX_PARTS, parseStructure, sectionBytes, type MimePart } from './index.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));
const text = (buf: Buffer, p: MimePart) => buf.subarray(p.bodyStart, p.end).toString();
const kids = (p: MimePart | undefined) => p?.parts ?? [];

test('plain text: one part, default type, offsets and line count', () => {
  const msg = crlf('From: a@example.test', 'Subject: hi', '', 'line one', 'line two', '');
  const s = parseStructure(msg);
  assert.equal(s.root.headerStart, 0);
  assert.equal(msg.subarray(0, s.root.bodyStart).toString(), 'From: a@example.test\r\nSubject: hi\r\n\r\n');
  assert.equal(text(msg, s.root), 'line one\r\nline two\r\n');
  assert.equal(s.root.end, msg.length);
  assert.equal(s.root.lines, 2);
  assert.deepEqual([s.root.type, s.root.subtype, s.root.params], ['text', 'plain', [['charset', 'us-ascii']]]);
  assert.equal(s.root.parts, undefined);
});

const alternative = crlf(
  'From: a@example.test',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  'This is a multi-part message in MIME format.',
  '--outer',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  '--inner',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'plain body',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>html body</p>',
  '--inner--',
  '',
  '--outer',
  'Content-Type: image/png; name=dot.png',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename=dot.png',
  '',
  'iVBORw0KGgo=',
  '--outer--',
  'epilogue',
  '',
);

test('multipart/mixed with multipart/alternative and a base64 attachment', () => {
  const s = parseStructure(alternative);
  const [alt, png] = kids(s.root);
  assert.equal(kids(s.root).length, 2);
  assert.equal(alt?.subtype, 'alternative');
  assert.deepEqual(kids(alt).map((p) => [p.subtype, text(alternative, p)]), [
    ['plain', 'plain body'],
    ['html', '<p>html body</p>'],
  ]);
  // the alternative ends before the CRLF that precedes the next outer delimiter
  assert.equal(text(alternative, alt!), '--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain body\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html body</p>\r\n--inner--\r\n');
  assert.equal(png?.encoding, 'base64');
  assert.deepEqual(png?.disposition, { type: 'attachment', params: [['filename', 'dot.png']] });
  assert.equal(text(alternative, png!), 'iVBORw0KGgo=');
  assert.equal(s.root.end, alternative.length, 'the epilogue belongs to the multipart');
});

test('LF-only line ends give the same tree', () => {
  const lf = Buffer.from(alternative.toString().replace(/\r\n/g, '\n'));
  const s = parseStructure(lf);
  assert.deepEqual(kids(kids(s.root)[0]).map((p) => text(lf, p)), ['plain body', '<p>html body</p>']);
  assert.equal(text(lf, kids(s.root)[1]!), 'iVBORw0KGgo=');
});

test('a missing close delimiter: the last part runs to the end', () => {
  const msg = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'one', '--b', '', 'two', 'still two');
  const s = parseStructure(msg);
  assert.deepEqual(kids(s.root).map((p) => text(msg, p)), ['one', 'two\r\nstill two']);
});

test('an outer delimiter closes an inner multipart that never closed', () => {
  const msg = crlf(
    'Content-Type: multipart/mixed; boundary=out',
    '',
    '--out',
    'Content-Type: multipart/alternative; boundary=in',
    '',
    '--in',
    '',
    'inner one',
    '--out',
    '',
    'outer two',
    '--out--',
  );
  const s = parseStructure(msg);
  assert.equal(kids(s.root).length, 2);
  assert.deepEqual(kids(kids(s.root)[0]).map((p) => text(msg, p)), ['inner one']);
  assert.equal(text(msg, kids(s.root)[1]!), 'outer two');
});

test('a boundary that is a prefix of the inner boundary does not cut the inner part', () => {
  const msg = crlf(
    'Content-Type: multipart/mixed; boundary="=_abc"',
    '',
    '--=_abc',
    'Content-Type: multipart/alternative; boundary="=_abc_1"',
    '',
    '--=_abc_1',
    '',
    'a',
    '--=_abc_1',
    '',
    'b',
    '--=_abc_1--',
    '--=_abc',
    '',
    'c',
    '--=_abc--',
  );
  const s = parseStructure(msg);
  assert.deepEqual(kids(kids(s.root)[0]).map((p) => text(msg, p)), ['a', 'b']);
  assert.equal(text(msg, kids(s.root)[1]!), 'c');
});

test('multipart without a boundary parameter, or whose boundary never appears, is one opaque part', () => {
  for (const ct of ['multipart/mixed', 'multipart/mixed; boundary=""', 'multipart/mixed; boundary=nowhere']) {
    const msg = crlf(`Content-Type: ${ct}`, '', '--x', 'hello');
    const s = parseStructure(msg);
    assert.equal(s.root.parts, undefined, ct);
    assert.equal(text(msg, s.root), '--x\r\nhello');
    assert.match(imapBodyStructure(s, false), /^\("MULTIPART" "MIXED" /);
  }
});

test('no blank line after the header: the body is empty; a part header may run into the next delimiter', () => {
  const only = crlf('From: a@example.test', 'Subject: no body');
  const s = parseStructure(only);
  assert.equal(s.root.bodyStart, only.length);
  assert.equal(s.root.end, only.length);
  assert.equal(s.envelope.subject, 'no body');

  const msg = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/html', '--b', '', 'second', '--b--');
  const m = parseStructure(msg);
  assert.equal(kids(m.root).length, 2);
  assert.equal(kids(m.root)[0]?.subtype, 'html');
  assert.equal(text(msg, kids(m.root)[0]!), '');
  assert.equal(text(msg, kids(m.root)[1]!), 'second');
});

test('parts with no header at all and an empty message', () => {
  const msg = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', '', '--b', 'x', '--b--');
  const s = parseStructure(msg);
  assert.deepEqual(kids(s.root).map((p) => text(msg, p)), ['', '']);
  const empty = parseStructure(Buffer.alloc(0));
  assert.deepEqual([empty.root.bodyStart, empty.root.end, empty.root.lines], [0, 0, 0]);
});

test('multipart/digest parts default to message/rfc822', () => {
  const msg = crlf('Content-Type: multipart/digest; boundary=d', '', '--d', '', 'Subject: one', '', 'body', '--d--');
  const [first] = kids(parseStructure(msg).root);
  assert.deepEqual([first?.type, first?.subtype, first?.message?.envelope.subject], ['message', 'rfc822', 'one']);
});

test('8-bit header bytes: UTF-8 is kept, Latin-1 is read as Latin-1', () => {
  const utf8 = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'utf8'), Buffer.from('\r\n\r\nx')]);
  assert.equal(parseStructure(utf8).envelope.subject, 'Grüße');
  const latin1 = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'latin1'), Buffer.from('\r\n\r\nx')]);
  assert.equal(parseStructure(latin1).envelope.subject, 'Grüße');
});

test('a 1 MB header line and a 1 MB boundary are handled in linear time', () => {
  const long = 'x'.repeat(1 << 20);
  const msg = crlf(`Subject: ${long}`, `Content-Type: multipart/mixed; boundary="${long}"`, '', `--${long}`, '', 'body');
  const t0 = Date.now();
  const s = parseStructure(msg);
  assert.equal(s.envelope.subject?.length, long.length);
  assert.equal(s.root.parts, undefined, 'a boundary longer than RFC 2046 allows is not looked for');
  const folded = crlf(`To: ${'a@b.test, '.repeat(100_000)}`, ` ${'c'.repeat(1 << 20)}`, '', 'x');
  assert.equal(parseStructure(folded).envelope.to?.length, 100_001);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test(`${MAX_PARTS} parts are all found; parts beyond that stay inside the multipart`, () => {
  const lines = ['Content-Type: multipart/mixed; boundary=b', ''];
  for (let i = 0; i <= MAX_PARTS; i++) lines.push('--b', '', `part ${i}`);
  lines.push('--b--', '');
  const msg = crlf(...lines);
  const t0 = Date.now();
  const s = parseStructure(msg);
  assert.equal(kids(s.root).length, MAX_PARTS);
  assert.equal(text(msg, kids(s.root)[MAX_PARTS - 1]!), `part ${MAX_PARTS - 1}`);
  assert.deepEqual(sectionBytes(msg, s, { part: [MAX_PARTS + 1], kind: 'all' }), null);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

function depthOf(p: MimePart): number {
  const inner = p.parts?.[0] ?? p.message?.root;
  return inner ? 1 + depthOf(inner) : 0;
}

test('multiparts nested 1,000 deep: depth is capped and the rest is one opaque part', () => {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < 1000; i++) {
    open.push(`Content-Type: multipart/mixed; boundary=b${i}`, '', `--b${i}`);
    close.unshift(`--b${i}--`);
  }
  const msg = crlf(...open, '', 'deep', ...close);
  const t0 = Date.now();
  const s = parseStructure(msg);
  assert.equal(depthOf(s.root), MAX_DEPTH);
  const bs = imapBodyStructure(s, true);
  assert.equal([...bs].filter((c) => c === '(').length, [...bs].filter((c) => c === ')').length);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('message/rfc822 nested 1,000 deep: depth is capped', () => {
  const head: string[] = [];
  for (let i = 0; i < 1000; i++) head.push(`Subject: level ${i}`, 'Content-Type: message/rfc822', '');
  const msg = crlf(...head, 'Subject: bottom', '', 'text');
  const s = parseStructure(msg);
  assert.equal(depthOf(s.root), MAX_DEPTH);
  assert.equal(s.root.message?.envelope.subject, 'level 1');
  assert.ok(imapBodyStructure(s, false).length > 0);
});

test('message/rfc822 with a non-identity transfer encoding is not parsed inside', () => {
  const msg = crlf('Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', 'U3ViamVjdDogeA0KDQp4');
  const s = parseStructure(msg);
  assert.equal(s.root.message, undefined);
  assert.equal(imapBodyStructure(s, false), '("MESSAGE" "RFC822" NIL NIL NIL "BASE64" 20)');
});

test('random and mutated input never throws', () => {
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const alphabet = ['\r\n', '\n', '\r', '--', '--b', '--b--', ':', ' ', ';', '"', '=', 'Content-Type: multipart/mixed; boundary=b', 'Content-Type: message/rfc822', 'x', '\u00e9', '\0'];
  const base = alternative.toString('latin1');
  for (let i = 0; i < 400; i++) {
    let s = i % 2 === 0 ? '' : base;
    for (let j = 0; j < 40; j++) {
      const piece = alphabet[rnd(alphabet.length)]!;
      const at = rnd(s.length + 1);
      s = s.slice(0, at) + piece + s.slice(i % 3 === 0 ? at + rnd(5) : at);
    }
    const buf = Buffer.from(s, 'latin1');
    const st = parseStructure(buf);
    imapBodyStructure(st, true);
    for (const kind of ['all', 'header', 'text', 'mime'] as const) sectionBytes(buf, st, { part: [1, 1], kind });
  }
});

test('a nonsense Content-Type falls back to text/plain; header lines without a colon are kept out of fields', () => {
  const msg = crlf('From mbox-line Mon Jan  1 00:00:00 2024', 'Content-Type: ;;;/', 'garbage line', 'Subject: still here', '', 'x');
  const s = parseStructure(msg);
  assert.deepEqual([s.root.type, s.root.subtype], ['text', 'plain']);
  assert.equal(s.envelope.subject, 'still here');
  assert.equal(sectionBytes(msg, s, { part: [], kind: 'header.fields', fields: ['subject', 'garbage line'] })?.toString(), 'Subject: still here\r\n\r\n');
  assert.ok(sectionBytes(msg, s, { part: [], kind: 'header.fields.not', fields: ['subject'] })?.toString().includes('garbage line\r\n'));
});
