import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binaryBytes, parseStructure, sectionBytes, type SectionSpec } from './index.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));

const forwarded = crlf(
  'From: a@example.test',
  'Subject: fwd',
  '  folded',
  'To: b@example.test',
  'Content-Type: multipart/mixed; boundary=b',
  '',
  '--b',
  'Content-Type: text/plain',
  '',
  'see attached',
  '--b',
  'Content-Type: message/rfc822',
  '',
  'From: ann@example.test',
  'Subject: original',
  'Content-Type: multipart/alternative; boundary=i',
  '',
  '--i',
  '',
  'plain',
  '--i',
  'Content-Type: text/html',
  '',
  '<b>html</b>',
  '--i--',
  '--b',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  '',
  'aGVs',
  'bG8=',
  '--b',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Transfer-Encoding: Quoted-Printable',
  '',
  'caf=E9 =3D soft=',
  'break  ',
  '--b',
  'Content-Transfer-Encoding: x-uuencode',
  '',
  'begin 644 x',
  '--b--',
  '',
);
const s = parseStructure(forwarded);
const get = (part: number[], kind: SectionSpec['kind'], fields?: string[]) => sectionBytes(forwarded, s, { part, kind, ...(fields ? { fields } : {}) })?.toString() ?? null;

test('whole message, HEADER, TEXT at the top level', () => {
  assert.equal(get([], 'all'), forwarded.toString());
  assert.equal(get([], 'header'), 'From: a@example.test\r\nSubject: fwd\r\n  folded\r\nTo: b@example.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n');
  assert.ok(get([], 'text')!.startsWith('--b\r\nContent-Type: text/plain\r\n'));
  assert.equal(get([], 'mime'), null);
});

test('HEADER.FIELDS and HEADER.FIELDS.NOT: case-insensitive, folded lines kept, blank line added', () => {
  assert.equal(get([], 'header.fields', ['SUBJECT', 'to', 'x-none']), 'Subject: fwd\r\n  folded\r\nTo: b@example.test\r\n\r\n');
  assert.equal(get([], 'header.fields.not', ['subject', 'content-type']), 'From: a@example.test\r\nTo: b@example.test\r\n\r\n');
  assert.equal(get([], 'header.fields', ['x-none']), '\r\n');
  // the last field of a header with no blank line still ends with a line break
  const bare = Buffer.from('Subject: x');
  assert.equal(sectionBytes(bare, parseStructure(bare), { part: [], kind: 'header.fields', fields: ['subject'] })?.toString(), 'Subject: x\r\n\r\n');
});

test('numbered parts, MIME headers, and the message/rfc822 rules (2.HEADER, 2.TEXT, 2.1, 2.2)', () => {
  assert.equal(get([1], 'all'), 'see attached');
  assert.equal(get([1], 'mime'), 'Content-Type: text/plain\r\n\r\n');
  assert.equal(get([2], 'mime'), 'Content-Type: message/rfc822\r\n\r\n');
  assert.ok(get([2], 'all')!.startsWith('From: ann@example.test\r\n') && get([2], 'all')!.endsWith('--i--'));
  assert.equal(get([2], 'header'), 'From: ann@example.test\r\nSubject: original\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n');
  assert.equal(get([2], 'header.fields', ['subject']), 'Subject: original\r\n\r\n');
  assert.equal(get([2], 'text'), '--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--i--');
  assert.equal(get([2, 1], 'all'), 'plain');
  assert.equal(get([2, 2], 'all'), '<b>html</b>');
  assert.equal(get([2, 2], 'mime'), 'Content-Type: text/html\r\n\r\n');
});

test('parts that do not exist are null; HEADER/TEXT need a message/rfc822 part', () => {
  assert.equal(get([9], 'all'), null);
  assert.equal(get([0], 'all'), null);
  assert.equal(get([1, 1], 'all'), null);
  assert.equal(get([2, 3], 'all'), null);
  assert.equal(get([1], 'header'), null);
  assert.equal(get([1], 'text'), null);
  assert.equal(get([2, 1, 1], 'all'), null);
});

test('a single-part message has exactly part 1; an encapsulated single-part message too', () => {
  const plain = crlf('Subject: x', '', 'body');
  const ps = parseStructure(plain);
  assert.equal(sectionBytes(plain, ps, { part: [1], kind: 'all' })?.toString(), 'body');
  assert.equal(sectionBytes(plain, ps, { part: [1], kind: 'mime' })?.toString(), 'Subject: x\r\n\r\n');
  assert.equal(sectionBytes(plain, ps, { part: [2], kind: 'all' }), null);
  const wrapped = crlf('Content-Type: message/rfc822', '', 'Subject: inner', '', 'inner body');
  const ws = parseStructure(wrapped);
  assert.equal(sectionBytes(wrapped, ws, { part: [1], kind: 'all' })?.toString(), 'Subject: inner\r\n\r\ninner body');
  assert.equal(sectionBytes(wrapped, ws, { part: [1, 1], kind: 'all' })?.toString(), 'inner body');
  assert.equal(sectionBytes(wrapped, ws, { part: [1], kind: 'header' })?.toString(), 'Subject: inner\r\n\r\n');
  assert.equal(sectionBytes(wrapped, ws, { part: [1, 2], kind: 'all' }), null);
});

test('BINARY: transfer encodings undone, unknown ones reported, containers raw', () => {
  assert.equal(binaryBytes(forwarded, s, [3])?.toString(), 'hello');
  assert.deepEqual(binaryBytes(forwarded, s, [4]), Buffer.from('caf\xe9 = softbreak', 'latin1'));
  assert.equal(binaryBytes(forwarded, s, [5]), 'unknown-cte');
  assert.equal(binaryBytes(forwarded, s, [1])?.toString(), 'see attached');
  assert.equal(binaryBytes(forwarded, s, [2])?.toString(), get([2], 'all'));
  assert.equal(binaryBytes(forwarded, s, [7]), null);
  assert.deepEqual(binaryBytes(forwarded, s, []), forwarded);
});

test('a structure that does not match the bytes gives bounded output, not an exception', () => {
  const short = forwarded.subarray(0, 40);
  assert.equal(sectionBytes(short, s, { part: [2, 2], kind: 'all' })?.length, 0);
  assert.ok(sectionBytes(short, s, { part: [], kind: 'header.fields.not', fields: [] }) !== null);
  assert.ok(binaryBytes(short, s, [3]) !== null);
});
