import assert from 'node:assert/strict';
import { test } from 'node:test';
import { err, errorReply, protoError, type ProtoErrorKind } from './errors.js';

const KINDS: ProtoErrorKind[] = [
  'line_too_long', 'bare_cr', 'bare_lf', 'data_bare_cr', 'control_char', 'bad_utf8', 'unknown_command', 'unimplemented', 'syntax',
  'sender_syntax', 'recipient_syntax', 'sender_refused_form', 'recipient_refused_form', 'utf8_address', 'param_unknown', 'param_value', 'param_duplicate',
];

test('every error kind maps to a 5xx reply whose enhanced code has the same class', () => {
  for (const kind of KINDS) {
    const r = errorReply(protoError(kind));
    assert.ok(r.code >= 500 && r.code < 600, kind);
    assert.match(r.enhanced ?? '', /^5\.\d\.\d{1,3}$/, kind);
    assert.ok(r.lines[0]!.length > 0, kind);
  }
});

test('a parser may replace the text, never the code', () => {
  const r = errorReply(protoError('syntax', 'Syntax: MAIL FROM:<address>'));
  assert.deepEqual([r.code, r.enhanced, r.lines], [501, '5.5.4', ['Syntax: MAIL FROM:<address>']]);
  const e = err('param_unknown', 'Unsupported option: X');
  assert.ok(!e.ok && e.error.kind === 'param_unknown');
});
