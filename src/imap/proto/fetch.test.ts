import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFetchItems, parseFetchModifiers } from './fetch.js';
import { tokenize } from './tokens.js';

const plan = (text: string) => parseFetchItems(tokenize({ texts: [`a FETCH 1 ${text}`], literals: [] }).args[1]!);

test('macros expand', () => {
  assert.deepEqual(plan('FAST').items.map((i) => i.k), ['flags', 'internaldate', 'size']);
  assert.deepEqual(plan('ALL').items.map((i) => i.k), ['flags', 'internaldate', 'size', 'envelope']);
  assert.deepEqual(plan('FULL').items.map((i) => i.k), ['flags', 'internaldate', 'size', 'envelope', 'body']);
});

test('UID FLAGS needs neither content nor structure', () => {
  const p = plan('(UID FLAGS MODSEQ RFC822.SIZE INTERNALDATE)');
  assert.equal(p.content, false);
  assert.equal(p.structure, false);
});

test('the whole message needs content but no structure; parts and headers need both', () => {
  for (const text of ['BODY.PEEK[]', 'BODY[]<0.10>', 'RFC822']) {
    assert.equal(plan(text).content, true, text);
    assert.equal(plan(text).structure, false, text);
  }
  for (const text of ['BODY.PEEK[HEADER]', 'BODY[1]', 'RFC822.TEXT', 'BINARY[]', 'BINARY.SIZE[1]', '(BODY.PEEK[] ENVELOPE)']) {
    assert.equal(plan(text).structure, true, text);
  }
});

test('sections with parts, header fields and partial ranges', () => {
  const p = plan('(BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>)');
  const it = p.items[0]!;
  assert.equal(it.k, 'section');
  if (it.k === 'section') {
    assert.deepEqual(it.section, { part: [1, 2], kind: 'header.fields', fields: ['From', 'To'] });
    assert.deepEqual(it.partial, { offset: 0, length: 100 });
    assert.equal(it.peek, true);
    assert.equal(it.label, 'BODY[1.2.HEADER.FIELDS (FROM TO)]');
  }
  assert.equal(p.setsSeen, false);
  assert.equal(plan('BODY[]').setsSeen, true);
  assert.equal(plan('BODY[TEXT]').items[0]!.k, 'section');
  assert.equal(plan('BODY[1.MIME]').items[0]!.k, 'section');
  assert.equal(plan('(RFC822.HEADER)').setsSeen, false);
  assert.equal(plan('RFC822').setsSeen, true);
});

test('BINARY, BINARY.PEEK and BINARY.SIZE', () => {
  const p = plan('(BINARY[1]<5.10> BINARY.PEEK[2] BINARY.SIZE[1])');
  assert.deepEqual(p.items.map((i) => i.k), ['binary', 'binary', 'binary.size']);
  assert.equal(p.setsSeen, true);
});

for (const bad of ['FOO', '()', 'BODY[MIME]', 'BODY[0]', 'BODY[1.HEADER.FIELDS ()]', 'BODY[HEADER.FIELDS]', 'BODY[]<0.0>', 'BINARY[TEXT]', 'BINARY.SIZE[1]<0.1>', 'BODY[1.2.FOO]', '"BODY"']) {
  test(`rejects fetch attribute ${bad}`, () => assert.throws(() => plan(bad)));
}

test('modifiers', () => {
  const t = tokenize({ texts: ['a UID FETCH 1 FLAGS (CHANGEDSINCE 12 VANISHED)'], literals: [] }).args[2]!;
  assert.ok(t.t === 'list');
  if (t.t === 'list') assert.deepEqual(parseFetchModifiers(t.v), { changedSince: 12, vanished: true });
  assert.throws(() => parseFetchModifiers([{ t: 'atom', v: 'VANISHED' }]));
  assert.throws(() => parseFetchModifiers([{ t: 'atom', v: 'CHANGEDSINCE' }]));
  assert.throws(() => parseFetchModifiers([{ t: 'atom', v: 'BOGUS' }]));
});
