import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needsContent, parseSearch } from './search.js';
import { tokenize } from './tokens.js';

const parse = (text: string, literals: string[] = []) => parseSearch(tokenize({ texts: `a SEARCH ${text}`.split('\0'), literals: literals.map((l) => Buffer.from(l)) }).args);

test('flag keys, sets and implicit AND', () => {
  const s = parse('UNSEEN 1:5 UID 3:*');
  assert.equal(s.key.k, 'and');
  if (s.key.k === 'and') assert.deepEqual(s.key.keys.map((k) => k.k), ['flag', 'seq', 'uid']);
  assert.equal(needsContent(s.key), false);
});

test('OR, NOT and parenthesised groups', () => {
  const s = parse('OR (FROM bob SEEN) NOT TO "alice smith"');
  assert.equal(s.key.k, 'or');
  assert.equal(needsContent(s.key), true);
});

test('dates, sizes, keywords, header, modseq', () => {
  const s = parse('SINCE 1-Feb-2024 SENTBEFORE 05-Mar-2024 LARGER 100 SMALLER 5000 KEYWORD $Forwarded HEADER X-Spam yes MODSEQ 7');
  assert.equal(s.key.k, 'and');
  if (s.key.k === 'and') assert.deepEqual(s.key.keys.map((k) => k.k), ['date', 'date', 'size', 'size', 'flag', 'header', 'modseq']);
});

test('CHARSET and RETURN options', () => {
  const s = parse('RETURN (MIN MAX COUNT) CHARSET UTF-8 TEXT {4}\0', ['café'.slice(0, 3) + 'e']);
  assert.deepEqual(s.returns, ['MIN', 'MAX', 'COUNT']);
  assert.equal(s.charset, 'UTF-8');
  assert.deepEqual(parse('RETURN () ALL').returns, []);
});

for (const bad of ['', 'FOO', 'SINCE 32-Jan-2024', 'SINCE 1-Foo-2024', 'LARGER x', 'OR SEEN', 'NOT', 'UID 0', 'KEYWORD \\Seen', 'RETURN (BOGUS) ALL', '()', 'HEADER', '*:*:*']) {
  test(`rejects search ${JSON.stringify(bad)}`, () => assert.throws(() => parse(bad)));
}

test('deep nesting and huge key counts are bounded', () => {
  assert.throws(() => parse('NOT '.repeat(50) + 'ALL'), /nested too deeply/);
  assert.throws(() => parse('ALL '.repeat(1500).trim()), /Too many/);
});
