import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Args, ImapParseError, tokenize, type Token } from './tokens.js';

const parse = (text: string, literals: string[] = []) => {
  const texts = text.split('\0');
  return tokenize({ texts, literals: literals.map((l) => Buffer.from(l)) });
};
const atoms = (ts: Token[]): unknown[] => ts.map((t) => (t.t === 'atom' ? t.v : t.t === 'string' ? `"${t.v}"` : atoms(t.v)));

test('tag, command and atoms', () => {
  const c = parse('a1 fetch 1:* (UID FLAGS)');
  assert.equal(c.tag, 'a1');
  assert.equal(c.name, 'FETCH');
  assert.deepEqual(atoms(c.args), ['1:*', ['UID', 'FLAGS']]);
});

test('UID commands are named with their verb', () => {
  assert.equal(parse('a uid fetch 1 FLAGS').name, 'UID FETCH');
});

test('quoted strings with escapes', () => {
  const c = parse('a LOGIN "al\\"ice" "p\\\\w"');
  assert.deepEqual(atoms(c.args), ['"al"ice"', '"p\\w"']);
});

test('literals between text fragments', () => {
  const c = parse('a LOGIN {5}\0 {3}\0', ['alice', 'pwd']);
  assert.deepEqual(atoms(c.args), ['"alice"', '"pwd"']);
  assert.equal((c.args[0] as { literal: boolean }).literal, true);
});

test('fetch section atoms keep spaces and parentheses inside brackets', () => {
  const c = parse('a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> BINARY[1])');
  assert.deepEqual(atoms(c.args), ['1', ['BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>', 'BINARY[1]']]);
});

test('nested lists and empty list', () => {
  const c = parse('a LIST () "" (a (b c))');
  assert.deepEqual(atoms(c.args), [[], '""', ['a', ['b', 'c']]]);
});

const bads: [string, string][] = [
  ['', 'Invalid tag'],
  ['a+b NOOP', 'Invalid tag'],
  ['* NOOP', 'Invalid tag'],
  ['a', 'Missing command'],
  ['a NO(OP', 'Invalid command name'],
  ['a LOGIN "unterminated', 'Unterminated quoted string'],
  ['a LOGIN "bad\\escape"', 'Invalid escape in quoted string'],
  ['a LIST (a b', 'Unbalanced parentheses'],
  ['a LIST a b)', 'Expected a space between arguments'],
  ['a LOGIN  x', 'Unexpected space'],
  ['a FETCH 1 BODY[HEADER', 'Unbalanced brackets'],
  ['a LOGIN x"y"', 'Expected a space between arguments'],
  ['a NOOP ', 'Missing argument'],
];
for (const [input, message] of bads) {
  test(`rejects ${JSON.stringify(input)}`, () => {
    assert.throws(() => parse(input), (e: unknown) => e instanceof ImapParseError && e.message === message);
  });
}

test('the tag is kept on argument errors so the BAD can be tagged', () => {
  assert.throws(() => parse('x7 LIST (a'), (e: unknown) => e instanceof ImapParseError && e.tag === 'x7');
});

test('literal size must match its announcement', () => {
  assert.throws(() => parse('a LOGIN {5}\0', ['abc']), /size mismatch/);
});

test('NUL only in literal8', () => {
  assert.throws(() => parse('a APPEND x {1}\0', ['\0']), /NUL/);
  const c = parse('a APPEND x ~{1}\0', ['\0']);
  assert.equal((c.args[1] as { binary: boolean }).binary, true);
});

test('deep nesting is bounded', () => {
  assert.throws(() => parse('a X ' + '('.repeat(40) + ')'.repeat(40)), /nested too deeply/);
});

test('Args accessors', () => {
  const a = new Args(parse('a X foo "bar" (1) 42').args);
  assert.equal(a.astring('x'), 'foo');
  assert.equal(a.astring('y'), 'bar');
  assert.equal(a.list('z').length, 1);
  assert.equal(a.number('n'), 42);
  a.end();
  assert.throws(() => new Args(parse('a X 1 2').args).end(), /Too many/);
  assert.throws(() => new Args(parse('a X -1').args).number('n'), /Expected a number/);
  assert.throws(() => new Args(parse('a X 99999999999').args).number('n'), /out of range/);
});
