import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkJobName, checkNodeInfo, checkNodeName, jobLockKey } from './cluster-common.js';
import { isStoreError } from './errors.js';

const node = { name: 'mx1.example.test', hostname: 'vm', pid: 42, roles: ['smtp', 'imap', 'smtp'], version: '0.1.0', heartbeatMs: 5000 };
const invalid = (err: unknown): boolean => isStoreError(err, 'invalid');

test('a good node description is normalised (roles sorted, deduplicated)', () => {
  assert.deepEqual(checkNodeInfo(node).roles, ['imap', 'smtp']);
  assert.equal(checkNodeName('node-2:1@x'), 'node-2:1@x');
});

test('hostile node descriptions are refused', () => {
  for (const name of ['', ' mx', 'mx\r\nINJECT', 'a/b', 'é', 'x'.repeat(256), '-lead']) {
    assert.throws(() => checkNodeName(name), invalid, JSON.stringify(name));
  }
  assert.throws(() => checkNodeInfo({ ...node, hostname: 'bad host' }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, pid: 0 }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, pid: 1.5 }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, roles: ['SMTP'] }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, roles: Array.from({ length: 33 }, (_, i) => `r${i}`) }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, version: '1.0 beta' }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, heartbeatMs: 10 }), invalid);
  assert.throws(() => checkNodeInfo({ ...node, heartbeatMs: Number.NaN }), invalid);
});

test('job names and their lock keys', () => {
  assert.equal(checkJobName('blob-gc'), 'blob-gc');
  for (const job of ['', 'Blob', 'a b', 'x'.repeat(64), "gc'; DROP TABLE x"]) assert.throws(() => checkJobName(job), invalid, job);
  const key = jobLockKey('blob-gc');
  assert.ok(Number.isInteger(key) && key >= 0 && key <= 0x7fffffff);
  assert.equal(jobLockKey('blob-gc'), key);
  assert.notEqual(jobLockKey('node-prune'), key);
});
