import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEhlo } from './capabilities.js';

test('EHLO keywords become flags; SIZE with and without a number; AUTH both forms', () => {
  const caps = parseEhlo(['mx.test greets you', 'PIPELINING', 'size 5000', '8BITMIME', 'SMTPUTF8', 'DSN', 'STARTTLS', 'CHUNKING', 'AUTH PLAIN login', 'AUTH=CRAM-MD5', 'X-UNKNOWN yes']);
  assert.deepEqual(caps, {
    esmtp: true, pipelining: true, size: 5000, eightBitMime: true, smtpUtf8: true, dsn: true, starttls: true, chunking: true, auth: ['PLAIN', 'LOGIN', 'CRAM-MD5'], xqueueid: false,
  });
  assert.equal(parseEhlo(['lmtp.test', 'PIPELINING', 'XQUEUEID']).xqueueid, true);
  assert.equal(parseEhlo(['x', 'SIZE']).size, 0);
  assert.equal(parseEhlo(['x', 'SIZE lots']).size, 0);
  assert.equal(parseEhlo(['x']).size, null);
  assert.deepEqual(parseEhlo(['x', 'AUTH PL$AIN ' + 'A'.repeat(30)]).auth, []);
});
