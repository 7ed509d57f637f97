import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DnsServerSyntaxError, parseResolvConf, parseServer, systemServers } from './resolv-conf.js';

test('server strings: address, address:port, [v6]:port, bare v6', () => {
  assert.deepEqual(parseServer('127.0.0.1'), { address: '127.0.0.1', port: 53 });
  assert.deepEqual(parseServer('127.0.0.53:5353'), { address: '127.0.0.53', port: 5353 });
  assert.deepEqual(parseServer('[::1]:5300'), { address: '::1', port: 5300 });
  assert.deepEqual(parseServer('::1'), { address: '::1', port: 53 });
  for (const bad of ['ns.example', '127.0.0.1:0', '127.0.0.1:99999', '127.0.0.1:x', '', '[::1]:']) {
    assert.throws(() => parseServer(bad), DnsServerSyntaxError, bad);
  }
});

test('resolv.conf: nameserver lines only, comments, zone ids and junk ignored', () => {
  const text = '# comment\nsearch example\nnameserver 10.0.0.1\nnameserver   fe80::1%eth0 ; x\nnameserver bogus\noptions ndots:2\n  nameserver 10.0.0.2\n';
  assert.deepEqual(parseResolvConf(text), [
    { address: '10.0.0.1', port: 53 },
    { address: 'fe80::1', port: 53 },
    { address: '10.0.0.2', port: 53 },
  ]);
  assert.deepEqual(systemServers('/nonexistent/resolv.conf'), [{ address: '127.0.0.1', port: 53 }]);
});
