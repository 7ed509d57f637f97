import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig } from './load.js';
import { formatProblem, type ConfigProblem } from './problems.js';
import { configuredListeners } from './schema.js';
import { validateConfig } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'cartero-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function problems(raw: unknown): string[] {
  const result = validateConfig(raw, dir);
  assert.ok('problems' in result, `expected problems, got a config: ${JSON.stringify(result)}`);
  return result.problems.map((p: ConfigProblem) => formatProblem('c.yaml', p));
}

function loadProblems(name: string, text: string): string[] {
  const file = join(dir, name);
  writeFileSync(file, text);
  try {
    loadConfig(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.file, file);
    return err.lines().map((l) => l.slice(file.length + 2));
  }
  assert.fail('expected a ConfigError');
}

describe('validateConfig', () => {
  test('an empty document gives a complete single-node config', () => {
    const result = validateConfig(null, dir);
    assert.ok('config' in result);
    const c = result.config;
    assert.ok(c.hostname.length > 0);
    assert.deepEqual(c.store, { backend: 'embedded', path: join(dir, 'data'), migrate_on_start: true });
    assert.equal(c.smtp.message_size_limit, 10240000);
    assert.deepEqual(c.log, { level: 'info', format: 'json', stats_interval: 0 });
    assert.deepEqual(
      configuredListeners(c).map((l) => `${l.proto} ${l.address}:${l.port}${l.submission ? ' submission' : ''}`),
      [
        'smtp 127.0.0.1:2525',
        'smtp 127.0.0.1:2587 submission',
        'lmtp 127.0.0.1:2424',
        'imap 127.0.0.1:2143',
        'pop3 127.0.0.1:2110',
      ],
    );
  });

  test('the contract example is accepted and relative paths resolve against the file directory', () => {
    const result = validateConfig(
      {
        hostname: 'mx.example.test',
        store: { backend: 'postgres', url: 'postgres://user@127.0.0.1:5432/cartero', pool_size: 10 },
        domains: ['Example.TEST'],
        relay_domains: ['relay.test'],
        mynetworks: ['127.0.0.1/32', '::1', '10.0.0.0/8', '2001:db8::/32'],
        transports: { 'relay.test': 'smtp:[127.0.0.3]:2526' },
        smtp: {
          listen: [
            { address: '127.0.0.1', port: 2525 },
            { address: '127.0.0.1', port: 2587, submission: true },
          ],
          tls: { cert: 'cert.pem', key: '/etc/key.pem' },
          message_size_limit: 10240000,
        },
        imap: { listen: [{ address: '::1', port: 2143 }] },
        log: { level: 'debug', format: 'text' },
      },
      dir,
    );
    assert.ok('config' in result, JSON.stringify(result));
    assert.deepEqual(result.config.domains, ['example.test']);
    assert.deepEqual(result.config.smtp.tls, { cert: join(dir, 'cert.pem'), key: '/etc/key.pem' });
    assert.equal(result.config.store.backend === 'postgres' && result.config.store.pool_size, 10);
  });

  test('wrong type names the key, the value and the expectation', () => {
    assert.deepEqual(problems({ smtp: { message_size_limit: 'big' } }), [
      'c.yaml: smtp.message_size_limit: found "big", expected a whole number of 1 or more',
    ]);
    assert.deepEqual(problems({ domains: 'example.test' }), ['c.yaml: domains: found "example.test", expected a list']);
  });

  test('an unknown key is named, with the keys that are allowed there', () => {
    const [line, ...rest] = problems({ smtp: { listen: [], mesage_size_limit: 1 } });
    assert.equal(rest.length, 0);
    assert.match(line ?? '', /^c\.yaml: smtp\.mesage_size_limit: found 1, expected no key "mesage_size_limit" here \(known keys: listen, tls, message_size_limit, recipient_limit, hopcount_limit, error_limit, command_timeout, data_timeout, tempfail\)$/);
    assert.match(problems({ colour: 'blue' })[0] ?? '', /^c\.yaml: colour: found "blue", expected no key "colour"/);
  });

  test('imap autologout may not be shorter than RFC 9051 allows', () => {
    assert.match(problems({ imap: { autologout: 600 } })[0] ?? '', /^c\.yaml: imap\.autologout: found 600, expected at least 1800 seconds/);
    const ok = validateConfig({ imap: { autologout: 3600, max_connections_per_user: 5 } }, dir);
    assert.ok('config' in ok && ok.config.imap.autologout === 3600 && ok.config.imap.max_connections_per_user === 5);
  });

  test('bad CIDRs in mynetworks', () => {
    const lines = problems({ mynetworks: ['127.0.0.1/33', '10.1.2.3/8', 'localhost', '::1/129'] });
    assert.equal(lines.length, 4);
    assert.match(lines[0] ?? '', /^c\.yaml: mynetworks\[0\]: found "127\.0\.0\.1\/33", expected a prefix length from 0 to 32/);
    assert.match(lines[1] ?? '', /mynetworks\[1\]: found "10\.1\.2\.3\/8", expected no host bits .*10\.0\.0\.0\/8/);
    assert.match(lines[2] ?? '', /mynetworks\[2\]: found "localhost", expected an IPv4 or IPv6 address or CIDR/);
    assert.match(lines[3] ?? '', /mynetworks\[3\]: found "::1\/129", expected a prefix length from 0 to 128/);
  });

  test('bad listener address and port', () => {
    assert.deepEqual(problems({ imap: { listen: [{ address: 'localhost', port: 0 }] } }), [
      'c.yaml: imap.listen[0].address: found "localhost", expected an IPv4 or IPv6 address such as 127.0.0.1 or ::1',
      'c.yaml: imap.listen[0].port: found 0, expected a port number from 1 to 65535',
    ]);
    assert.deepEqual(problems({ pop3: { listen: [{ address: '127.0.0.1' }] } }), [
      'c.yaml: pop3.listen[0].port: found nothing, expected a port number from 1 to 65535',
    ]);
    assert.match(problems({ imap: { listen: [{ address: '127.0.0.1', port: 1, submission: true }] } })[0] ?? '', /imap\.listen\[0\]\.submission: found true, expected no key "submission"/);
  });

  test('store: path required for embedded, url for postgres, backend known', () => {
    assert.deepEqual(problems({ store: { backend: 'embedded' } }), [
      'c.yaml: store.path: found nothing, expected a directory path for the embedded store',
    ]);
    assert.deepEqual(problems({ store: { backend: 'postgres' } }), [
      'c.yaml: store.url: found nothing, expected a postgres:// connection URL',
    ]);
    assert.deepEqual(problems({ store: { backend: 'mysql' } }), [
      'c.yaml: store.backend: found "mysql", expected "embedded" or "postgres"',
    ]);
    assert.match(problems({ store: { backend: 'postgres', url: 'postgres://x/y', path: './data' } })[0] ?? '', /store\.path: found "\.\/data", expected no key "path" here \(known keys: backend, url, pool_size, migrate_on_start\)/);
  });

  test('cross-key rules: implicit TLS needs a certificate; duplicate listeners; local vs relay domains', () => {
    assert.deepEqual(problems({ imap: { listen: [{ address: '127.0.0.1', port: 2993, tls: 'implicit' }] } }), [
      'c.yaml: imap.listen[0].tls: found "implicit", expected a certificate in imap.tls (cert and key) for implicit TLS',
    ]);
    assert.deepEqual(problems({ pop3: { listen: [{ address: '127.0.0.1', port: 2525 }] } }), [
      'c.yaml: pop3.listen[0]: found "127.0.0.1:2525", expected an address and port not already used by smtp.listen[0]',
    ]);
    assert.deepEqual(problems({ domains: ['a.test'], relay_domains: ['A.test'] }), [
      'c.yaml: relay_domains[0]: found "a.test", expected a domain not also listed in domains',
    ]);
  });

  test('a top-level value that is not a mapping', () => {
    assert.deepEqual(problems(['a']), ['c.yaml: (top level): found ["a"], expected a mapping of keys to values']);
  });
});

describe('loadConfig', () => {
  test('a good file loads', () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, 'hostname: mx.example.test\nstore: { backend: embedded, path: ./store }\n');
    const config = loadConfig(file);
    assert.equal(config.hostname, 'mx.example.test');
    assert.deepEqual(config.store, { backend: 'embedded', path: join(dir, 'store'), migrate_on_start: true });
  });

  test('YAML syntax errors give line and column', () => {
    const lines = loadProblems('syntax.yaml', 'hostname: a\nsmtp:\n  listen: [ { address: 127.0.0.1, port: 25\nlog: {}\n');
    assert.ok(lines.length >= 1);
    assert.match(lines[0] ?? '', /^line \d+, column \d+: found ".*", expected valid YAML \(.+\)$/);
    assert.deepEqual(loadProblems('dup.yaml', 'hostname: a\nhostname: b\n'), [
      'line 2, column 1: found "hostname: b", expected valid YAML (Map keys must be unique)',
    ]);
  });

  test('an unreadable TLS certificate is named by its key', () => {
    writeFileSync(join(dir, 'key.pem'), 'x');
    assert.deepEqual(loadProblems('tls.yaml', 'smtp: { tls: { cert: missing-cert.pem, key: key.pem } }\n'), [
      `smtp.tls.cert: found ${JSON.stringify(join(dir, 'missing-cert.pem'))}, expected a readable file (ENOENT)`,
    ]);
  });

  test('a store path whose parent does not exist', () => {
    const [line] = loadProblems('store.yaml', 'store: { backend: embedded, path: ./no/such/dir }\n');
    assert.match(line ?? '', /^store\.path: found ".*no\/such\/dir", expected a path whose parent directory .*no\/such exists and is writable \(ENOENT\)$/);
  });

  test('a missing file', () => {
    const missing = join(dir, 'nope.yaml');
    assert.throws(() => loadConfig(missing), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.lines(), [`${missing}: found nothing, expected a readable configuration file (ENOENT)`]);
      return true;
    });
  });
});
