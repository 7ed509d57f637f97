import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerFieldCounts } from './headers.js';

const headerFieldNames = (content: Buffer): string[] => [...headerFieldCounts(content).keys()];

test('field names of the header section only', () => {
  const msg = Buffer.from('Subject: hi\r\nMessage-Id: <x@y>\r\n folded: not a field\r\nFrom : a@b\r\n\r\nDate: in the body\r\n');
  assert.deepEqual(headerFieldNames(msg), ['subject', 'message-id', 'from']);
});

test('no body separator: all header; no header at all', () => {
  assert.deepEqual(headerFieldNames(Buffer.from('Date: x\r\nTo: y')), ['date', 'to']);
  assert.deepEqual(headerFieldNames(Buffer.from('\r\nDate: x\r\n')), []);
  assert.deepEqual(headerFieldNames(Buffer.alloc(0)), []);
});
