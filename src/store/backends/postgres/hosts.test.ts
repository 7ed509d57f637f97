import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isStoreError } from '../../errors.js';
import { parseMultiHostUrl, urlFor } from './hosts.js';

test('single-host URLs without target_session_attrs are left to pg', () => {
  assert.equal(parseMultiHostUrl('postgres://u@127.0.0.1:5432/db'), null);
  assert.equal(parseMultiHostUrl('postgresql://u:p@db.example/db?sslmode=disable'), null);
  assert.equal(parseMultiHostUrl('socket:/var/run/postgresql?db=x'), null);
});

test('a host list with ports, user info and parameters', () => {
  const p = parseMultiHostUrl('postgres://u:s%40cret@h1:5433,h2,[::1]:6000/cartero?target_session_attrs=read-write&application_name=x');
  assert.ok(p);
  assert.deepEqual(p.hosts, [
    { host: 'h1', port: 5433 },
    { host: 'h2', port: 5432 },
    { host: '::1', port: 6000 },
  ]);
  assert.equal(p.target, 'read-write');
  assert.equal(urlFor(p, { host: 'h2', port: 5432 }), 'postgres://u:s%40cret@h2:5432/cartero?application_name=x');
  assert.equal(urlFor(p, { host: '::1', port: 6000 }), 'postgres://u:s%40cret@[::1]:6000/cartero?application_name=x');
});

test('target_session_attrs alone (one host) and the accepted values', () => {
  assert.equal(parseMultiHostUrl('postgres://h1/db?target_session_attrs=any')?.target, 'any');
  assert.equal(parseMultiHostUrl('postgres://h1/db?target_session_attrs=primary')?.target, 'read-write');
  assert.equal(parseMultiHostUrl('postgres://h1,h2/db')?.target, 'any');
});

test('malformed host lists are `invalid`, never half-parsed', () => {
  const bad = [
    'postgres://h1,,h2/db',
    'postgres://h1:0,h2/db',
    'postgres://h1:70000,h2/db',
    'postgres://h1:abc,h2/db',
    'postgres://[::1,h2/db',
    'postgres://[::1]x,h2/db',
    'postgres:///db?target_session_attrs=read-write',
    'postgres://h1/db?target_session_attrs=prefer-standby',
    `postgres://${Array.from({ length: 17 }, (_, i) => `h${i}`).join(',')}/db`,
  ];
  for (const url of bad) assert.throws(() => parseMultiHostUrl(url), (err: unknown) => isStoreError(err, 'invalid'), url);
});
