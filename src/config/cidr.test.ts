import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, parseCidr, parseIp, type Cidr } from './cidr.js';

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  assert.ok(typeof c !== 'string', `${text}: ${String(c)}`);
  return c;
}

test('parseIp handles IPv4, IPv6, compressed and embedded IPv4 forms', () => {
  assert.deepEqual(Array.from(parseIp('192.0.2.1') ?? []), [192, 0, 2, 1]);
  assert.deepEqual(Array.from(parseIp('::1') ?? []), [...new Array<number>(15).fill(0), 1]);
  assert.deepEqual(Array.from(parseIp('2001:db8::ff00:42:8329') ?? []).slice(10), [0xff, 0, 0, 0x42, 0x83, 0x29]);
  assert.deepEqual(Array.from(parseIp('::ffff:192.0.2.1') ?? []).slice(10), [0xff, 0xff, 192, 0, 2, 1]);
  assert.equal(parseIp('fe80::1%eth0'), null);
  assert.equal(parseIp('example.test'), null);
});

test('parseCidr: bare addresses are single hosts; host bits are refused with a suggestion', () => {
  assert.equal(cidr('127.0.0.1').prefix, 32);
  assert.equal(cidr('::1').prefix, 128);
  assert.equal(cidr('0.0.0.0/0').prefix, 0);
  assert.match(String(parseCidr('10.1.0.0/8')), /did you mean 10\.0\.0\.0\/8/);
  assert.match(String(parseCidr('2001:db8:1::1/32')), /did you mean 2001:db8::\/32/);
  assert.match(String(parseCidr('10.0.0.0/')), /prefix length/);
  assert.match(String(parseCidr('10.0.0.0/x')), /prefix length/);
});

test('cidrContains, including IPv4-mapped IPv6 clients', () => {
  const net = cidr('192.0.2.0/24');
  assert.equal(cidrContains(net, '192.0.2.77'), true);
  assert.equal(cidrContains(net, '192.0.3.1'), false);
  assert.equal(cidrContains(net, '::ffff:192.0.2.9'), true);
  assert.equal(cidrContains(cidr('2001:db8::/32'), '2001:db8:ffff::1'), true);
  assert.equal(cidrContains(cidr('2001:db8::/32'), '2001:db9::1'), false);
  assert.equal(cidrContains(cidr('::1'), '127.0.0.1'), false);
});
