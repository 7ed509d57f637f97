import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeSaslResponse, encodeChallenge, parsePlain } from './sasl.js';

test('strict base64 responses', () => {
  assert.equal(decodeSaslResponse('YWxpY2U='), 'alice');
  assert.equal(decodeSaslResponse('='), '');
  assert.equal(decodeSaslResponse('YWxpY2U'), null);
  assert.equal(decodeSaslResponse('YW*pY2U='), null);
  assert.equal(encodeChallenge('Username:'), 'VXNlcm5hbWU6');
});

test('PLAIN message', () => {
  assert.deepEqual(parsePlain('\0alice\0secret'), { authzid: '', authcid: 'alice', password: 'secret' });
  assert.deepEqual(parsePlain('alice\0alice\0secret'), { authzid: 'alice', authcid: 'alice', password: 'secret' });
  assert.equal(parsePlain('alice\0secret'), null);
  assert.equal(parsePlain('\0\0secret'), null);
  assert.equal(parsePlain('\0a\0b\0c'), null);
});
