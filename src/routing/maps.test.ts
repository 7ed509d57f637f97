import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileMap, inlineMap, isMapError, lookupAddress, MapChain, MapError, parseMapText, splitExtension, withExtension } from './maps.js';

function syntaxError(text: string, line: number, reason: RegExp): void {
  assert.throws(
    () => parseMapText(text, 'f'),
    (err: unknown) => isMapError(err) && err.kind === 'syntax' && err.line === line && reason.test(err.reason) && err.message.startsWith(`f, line ${line}: `),
  );
}

describe('parseMapText', () => {
  test('entries, comments, blank lines, continuations, case folding of keys only', () => {
    const text = [
      '# a comment',
      '',
      'Alice@Example.ORG   Alice.Smith@example.org',
      '   # an indented comment does not continue',
      'list@example.org  a@x.test,',
      '\tb@y.test,',
      '  c@z.test',
      '   ',
      'hash#key  value # with hash',
      '@example.net\t@example.com   ',
      'multi  lots   of   spaces',
    ].join('\n');
    const { entries, duplicates } = parseMapText(text, 'f');
    assert.deepEqual([...entries], [
      ['alice@example.org', 'Alice.Smith@example.org'],
      ['list@example.org', 'a@x.test, b@y.test, c@z.test'],
      ['hash#key', 'value # with hash'],
      ['@example.net', '@example.com'],
      ['multi', 'lots   of   spaces'],
    ]);
    assert.deepEqual(duplicates, []);
  });

  test('a blank or comment line does not end a logical line (postmap readlline)', () => {
    const { entries } = parseMapText('k a,\n\n# note\n  b\n', 'f');
    assert.equal(entries.get('k'), 'a, b');
  });

  test('CRLF line ends, no final newline, empty file', () => {
    assert.deepEqual([...parseMapText('a 1\r\nb 2', 'f').entries], [['a', '1'], ['b', '2']]);
    assert.equal(parseMapText('', 'f').entries.size, 0);
    assert.equal(parseMapText('\n\n# only comments\n', 'f').entries.size, 0);
  });

  test('duplicate keys: the first wins and the later lines are reported (postmap without -r)', () => {
    const { entries, duplicates } = parseMapText('a first\nb x\nA second\n', 'f');
    assert.equal(entries.get('a'), 'first');
    assert.deepEqual(duplicates, [{ key: 'a', line: 3, firstLine: 1 }]);
  });

  test('malformed lines name the line', () => {
    syntaxError('a 1\nkeyonly\n', 2, /expected "key whitespace value", found "keyonly"/);
    syntaxError('a 1\nkey   \n', 2, /expected "key whitespace value"/);
    syntaxError('  leading continuation\na 1\n', 1, /continuation line .* no entry before it/);
    syntaxError('# c\n\n\tafter blank\n', 3, /continuation line/);
    syntaxError('a 1\nb \0x\n', 2, /control character "\\u0000"/);
    syntaxError('a 1\nb x\ry\n', 2, /control character "\\r"/);
    syntaxError('a 1\nb x\fy\n', 2, /control character/);
    syntaxError(`a ${'x'.repeat(70_000)}\n`, 1, /longer than 65536/);
    syntaxError(`a x\n${'  y\n'.repeat(40_000)}`, 1, /longer than 65536/);
  });

  test('a value check refuses a bad value with its line', () => {
    const check = (v: string) => (v === 'bad' ? 'not allowed' : null);
    assert.throws(
      () => parseMapText('a ok\nb bad\n', 'f', check),
      (err: unknown) => err instanceof MapError && err.kind === 'value' && err.line === 2 && /b: not allowed/.test(err.message),
    );
  });
});

describe('inline and chained tables', () => {
  test('inline: lists joined, keys folded, bad keys and values refused', async () => {
    const m = inlineMap('virtual_alias_maps', { 'Team@X.test': ['a@y', 'b@z'], '@x.test': '%1@other' });
    assert.equal(m.name, 'inline:virtual_alias_maps');
    assert.equal(await m.get('team@x.TEST'), 'a@y, b@z');
    assert.equal(await m.get('nobody@x.test'), null);
    assert.throws(() => inlineMap('m', { 'a b': 'x' }), /must be one word/);
    assert.throws(() => inlineMap('m', { a: '  ' }), /empty value/);
    assert.throws(() => inlineMap('m', { A: 'x', a: 'y' }), /given twice/);
    assert.throws(() => inlineMap('m', { a: 'x' }, () => 'nope'), (e: unknown) => isMapError(e) && e.kind === 'value');
  });

  test('chain: first hit wins', async () => {
    const chain = new MapChain([inlineMap('one', { a: '1' }), inlineMap('two', { a: '2', b: '2' })]);
    assert.equal(await chain.get('a'), '1');
    assert.equal(await chain.get('b'), '2');
    assert.equal(await chain.get('c'), null);
  });
});

describe('FileMap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-maps-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('open, reload, and a broken reload keeps the old table', async () => {
    const path = join(dir, 'virtual');
    writeFileSync(path, 'a@x.test b@y.test\n');
    const dups: number[] = [];
    const m = await FileMap.open(path, { onDuplicate: (d) => dups.push(d.line) });
    assert.equal(m.name, `file:${path}`);
    assert.equal(await m.get('A@X.test'), 'b@y.test');
    writeFileSync(path, 'a@x.test c@y.test\nd e\nd f\n');
    await m.reload();
    assert.equal(await m.get('a@x.test'), 'c@y.test');
    assert.deepEqual(dups, [3]);
    writeFileSync(path, 'a@x.test z@y.test\nbroken\n');
    await assert.rejects(m.reload(), (err: unknown) => isMapError(err) && err.source === path && err.line === 2);
    assert.equal(await m.get('a@x.test'), 'c@y.test', 'old table kept');
    rmSync(path);
    await assert.rejects(m.reload(), (err: unknown) => isMapError(err) && err.kind === 'io' && /ENOENT/.test(err.message));
    assert.equal(await m.get('d'), 'e');
  });

  test('a missing or non-UTF-8 file cannot be opened', async () => {
    await assert.rejects(FileMap.open(join(dir, 'none')), (err: unknown) => isMapError(err) && err.kind === 'io');
    const path = join(dir, 'latin1');
    writeFileSync(path, Buffer.concat([Buffer.from('a 1\nb caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await assert.rejects(FileMap.open(path), (err: unknown) => isMapError(err) && err.line === 2 && /UTF-8/.test(err.message));
  });

  test('chain reload: each member keeps its table when another fails', async () => {
    const good = join(dir, 'good');
    const bad = join(dir, 'bad');
    writeFileSync(good, 'k 1\n');
    writeFileSync(bad, 'j 1\n');
    const chain = new MapChain([await FileMap.open(good), await FileMap.open(bad), inlineMap('i', { i: '1' })]);
    writeFileSync(good, 'k 2\n');
    writeFileSync(bad, 'j\n');
    await assert.rejects(chain.reload(), (err: unknown) => isMapError(err) && err.source === bad);
    assert.equal(await chain.get('k'), '2');
    assert.equal(await chain.get('j'), '1');
  });
});

describe('lookupAddress (Postfix order)', () => {
  const map = inlineMap('m', {
    'user+foo@example.org': 'exact-ext',
    'user@example.org': 'exact',
    'other+bar': 'user-ext',
    other: 'user',
    '@example.org': 'domain',
    'solo@remote.test': 'remote',
  });
  const local = { delimiters: '+', userForm: (d: string) => d === 'example.org' };

  test('order: user+ext@domain, user@domain, user+ext, user, @domain', async () => {
    assert.deepEqual(await lookupAddress(map, 'User+Foo@Example.org', local), { value: 'exact-ext', key: 'user+foo@example.org', form: 'address', extension: null });
    assert.deepEqual(await lookupAddress(map, 'user+zz@example.org', local), { value: 'exact', key: 'user@example.org', form: 'address-base', extension: '+zz' });
    assert.deepEqual(await lookupAddress(map, 'other+bar@example.org', local), { value: 'user-ext', key: 'other+bar', form: 'user', extension: null });
    assert.deepEqual(await lookupAddress(map, 'other+q@example.org', local), { value: 'user', key: 'other', form: 'user-base', extension: '+q' });
    assert.deepEqual(await lookupAddress(map, 'who+x@example.org', local), { value: 'domain', key: '@example.org', form: 'domain', extension: null });
  });

  test('bare user forms only for the domains the option allows; no delimiters, no extension forms', async () => {
    assert.equal(await lookupAddress(map, 'other@remote.test', local), null);
    assert.equal((await lookupAddress(map, 'solo@remote.test', local))?.value, 'remote');
    assert.equal(await lookupAddress(map, 'other@example.org', { delimiters: '+' }).then((m) => m?.form), 'domain');
    assert.equal(await lookupAddress(map, 'user+zz@example.org', { delimiters: '' }).then((m) => m?.form), 'domain');
  });

  test('unsplittable addresses are not looked up', async () => {
    assert.equal(await lookupAddress(map, 'no-at-sign', local), null);
    assert.equal(await lookupAddress(map, '@example.org', local), null);
    assert.equal(await lookupAddress(map, 'user@', local), null);
  });

  test('extension helpers', () => {
    assert.deepEqual(splitExtension('a+b+c', '+'), ['a', '+b+c']);
    assert.deepEqual(splitExtension('a-b', '+-'), ['a', '-b']);
    assert.equal(splitExtension('+lead', '+'), null);
    assert.equal(withExtension('x@y', '+foo'), 'x+foo@y');
    assert.equal(withExtension('x', '+foo'), 'x+foo');
    assert.equal(withExtension('x@y', null), 'x@y');
  });
});
