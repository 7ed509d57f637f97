import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressSpans, headerFields, replaceSpans } from './headers.js';

function spansOf(value: string): string[] | null {
  const content = Buffer.from(`To:${value}\r\n\r\nbody\r\n`, 'utf8');
  const [field] = headerFields(content);
  assert.ok(field);
  const spans = addressSpans(content, field);
  return spans && spans.map((s) => `${s.address}|${content.toString('utf8', s.start, s.end)}`).map((s) => s.split('|')[0]!);
}

describe('headerFields', () => {
  test('fields with folding; the section ends at the empty line; offsets are bytes', () => {
    const text = 'From: Zoë <z@x.test>\r\nTo: a@x.test,\r\n\tb@y.test\r\nSubject: hi\r\n\r\nTo: not-a-header@x.test\r\n';
    const content = Buffer.from(text, 'utf8');
    const fields = headerFields(content);
    assert.deepEqual(fields.map((f) => f.name), ['From', 'To', 'Subject']);
    const to = fields[1]!;
    assert.equal(content.toString('utf8', to.start, to.end), 'To: a@x.test,\r\n\tb@y.test\r\n');
    assert.equal(content.toString('utf8', fields[0]!.valueStart, fields[0]!.end), ' Zoë <z@x.test>\r\n');
  });

  test('bare LF, no body, a non-header line ends the section, a leading continuation is body', () => {
    assert.deepEqual(headerFields(Buffer.from('A: 1\nB: 2\n')).map((f) => f.name), ['A', 'B']);
    assert.deepEqual(headerFields(Buffer.from('A: 1\r\nnot a header\r\nB: 2\r\n')).map((f) => f.name), ['A']);
    assert.deepEqual(headerFields(Buffer.from(' continued\r\nA: 1\r\n')), []);
    assert.deepEqual(headerFields(Buffer.from('Bad Name: x\r\n')), []);
    assert.deepEqual(headerFields(Buffer.from('From : old@style.test\r\n')).map((f) => f.name), ['From']);
    assert.deepEqual(headerFields(Buffer.alloc(0)), []);
  });
});

describe('addressSpans', () => {
  test('plain, display names, quoted names with specials, comments, RFC 2047', () => {
    assert.deepEqual(spansOf(' a@x.test'), ['a@x.test']);
    assert.deepEqual(spansOf(' Alice Example <alice@x.test>'), ['alice@x.test']);
    assert.deepEqual(spansOf(' "Doe, John <boss@evil.test>" <john@x.test>'), ['john@x.test']);
    assert.deepEqual(spansOf(' john@x.test (John Doe, <fake@y.test>)'), ['john@x.test']);
    assert.deepEqual(spansOf(' (comment (nested) here) <a@x.test> (after)'), ['a@x.test']);
    assert.deepEqual(spansOf(' =?UTF-8?B?Wm/Dqw==?= <zoe@x.test>'), ['zoe@x.test']);
    assert.deepEqual(spansOf(' Zoë Ünïcode <zoë@exämple.test>'), ['zoë@exämple.test']);
    assert.deepEqual(spansOf(' "quoted local"@x.test'), ['"quoted local"@x.test']);
    assert.deepEqual(spansOf(' a@[192.0.2.1]'), ['a@[192.0.2.1]']);
  });

  test('lists, groups, folded lines, empty members', () => {
    assert.deepEqual(spansOf(' a@x.test, "B" <b@y.test>,\r\n  c@z.test'), ['a@x.test', 'b@y.test', 'c@z.test']);
    assert.deepEqual(spansOf(' undisclosed-recipients:;'), []);
    assert.deepEqual(spansOf(' Team: a@x.test, Bob <b@x.test>; c@y.test'), ['a@x.test', 'b@x.test', 'c@y.test']);
    assert.deepEqual(spansOf(' a@x.test,, ,b@y.test,'), ['a@x.test', 'b@y.test']);
    assert.deepEqual(spansOf(' <>'), []);
    assert.deepEqual(spansOf(''), []);
  });

  test('what is left alone: unqualified names, source routes, spaced-out obsolete addresses', () => {
    assert.deepEqual(spansOf(' root, a@x.test'), ['a@x.test']);
    assert.deepEqual(spansOf(' <@relay.test:a@x.test>, b@y.test'), ['b@y.test']);
    assert.deepEqual(spansOf(' john . doe @ x.test'), []);
    assert.deepEqual(spansOf(' a@(comment)x.test'), []);
    assert.deepEqual(spansOf(' John Doe a@x.test'), []);
  });

  test('malformed fields yield nothing to rewrite', () => {
    for (const v of [
      ' "unterminated <a@x.test>',
      ' (unterminated comment a@x.test',
      ' <a@x.test',
      ' a@x.test>',
      ' <<a@x.test>>',
      ' <a@x.test> extra@y.test',
      ' a@x.test)',
      ' [unterminated@x.test',
      ' a: b: c@x.test;',
      ' a@x.test;',
      ` ${'('.repeat(40)}deep${')'.repeat(40)} a@x.test`,
    ]) {
      assert.equal(spansOf(v), null, v);
    }
  });
});

describe('replaceSpans', () => {
  test('replaces only the given byte ranges; refuses overlaps', () => {
    const content = Buffer.from('abcdef');
    assert.equal(replaceSpans(content, [{ start: 4, end: 5, text: 'É' }, { start: 1, end: 3, text: 'XYZ' }]).toString(), 'aXYZdÉf');
    assert.equal(replaceSpans(content, []), content);
    assert.throws(() => replaceSpans(content, [{ start: 1, end: 3, text: '' }, { start: 2, end: 4, text: '' }]), RangeError);
  });
});
