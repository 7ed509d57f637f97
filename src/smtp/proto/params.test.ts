import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMailParams, parseRcptParams } from './params.js';

test('MAIL parameters: values and defaults', () => {
  const r = parseMailParams(' size=123 body=binarymime smtputf8 ret=full envid=abc+2Bdef');
  assert.ok(r.ok);
  assert.deepEqual(r.value, { size: 123, body: 'BINARYMIME', smtputf8: true, ret: 'FULL', envid: 'abc+def', auth: null });
  const none = parseMailParams('');
  assert.ok(none.ok && none.value.size === null && !none.value.smtputf8);
});

test('SIZE larger than any safe integer is Infinity (always over the limit)', () => {
  const r = parseMailParams(' SIZE=99999999999999999999');
  assert.ok(r.ok && r.value.size === Infinity);
  assert.ok(!parseMailParams(' SIZE=999999999999999999999').ok);
});

test('bad values', () => {
  for (const bad of [' BODY=9BIT', ' RET=ALL', ' SMTPUTF8=yes', ' ENVID=a+zz', ' ENVID=', ' SIZE', ` ENVID=${'x'.repeat(101)}`, ' ENVID=a+0Db', ' AUTH=a+0A']) {
    const r = parseMailParams(bad);
    assert.ok(!r.ok, bad);
  }
});

test('RCPT parameters: NOTIFY and ORCPT', () => {
  const r = parseRcptParams(' notify=failure ORCPT=RFC822;a+40b');
  assert.ok(r.ok);
  assert.deepEqual(r.value, { notify: ['FAILURE'], orcpt: 'rfc822;a@b' });
  for (const bad of [' NOTIFY=', ' NOTIFY=NEVER,DELAY', ' NOTIFY=SUCCESS,SUCCESS', ' NOTIFY=SOMETIMES', ' ORCPT=a@b', ' ORCPT=;a@b', ' ORCPT=rfc822;a+0D+0Ab', ' SIZE=1']) {
    assert.ok(!parseRcptParams(bad).ok, bad);
  }
});
