import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import { openStore } from '../../src/store/index.js';
import { runCli, tempConfig, type TempConfig } from './helpers.js';

function json<T>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

describe('check-config', () => {
  let t: TempConfig;
  before(() => (t = tempConfig()));
  after(() => t.cleanup());

  test('a valid file: "config OK" and exit 0', async () => {
    const r = await runCli(['check-config', '-c', t.file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `config OK: ${t.file}\n`);
  });

  test('$CARTERO_CONFIG is used without -c', async () => {
    const r = await runCli(['check-config'], { env: { CARTERO_CONFIG: t.file } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `config OK: ${t.file}\n`);
  });

  test('problems: one line each on stderr, exit 2, no stack trace', async () => {
    const bad = join(t.dir, 'bad.yaml');
    writeFileSync(bad, 'hostname: 7\nmynetworks: [10.0.0.0/33]\nsmtp: { lisen: [] }\n');
    const r = await runCli(['check-config', '-c', bad]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.trimEnd().split('\n'), [
      `${bad}: hostname: found 7, expected a host name such as mx.example.test`,
      `${bad}: mynetworks[0]: found "10.0.0.0/33", expected a prefix length from 0 to 32 after the "/"`,
      `${bad}: smtp.lisen: found [], expected no key "lisen" here (known keys: listen, tls, message_size_limit, recipient_limit, hopcount_limit, error_limit, command_timeout, data_timeout, tempfail)`,
    ]);
  });

  test('YAML syntax error and missing file: exit 2', async () => {
    const bad = join(t.dir, 'syntax.yaml');
    writeFileSync(bad, 'smtp: { listen: [ }\n');
    const r = await runCli(['check-config', '-c', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^.*syntax\.yaml: line 1, column \d+: found .*, expected valid YAML/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const missing = await runCli(['check-config', '-c', join(t.dir, 'none.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /none\.yaml: found nothing, expected a readable configuration file \(ENOENT\)\n$/);
  });
});

describe('usage', () => {
  test('--help on every command and group exits 0', async () => {
    const cases = [['--help'], ['serve', '--help'], ['check-config', '--help'], ['db', '--help'], ['domain', '--help'], ['user', 'add', '--help'], ['alias', 'list', '-h']];
    const results = await Promise.all(cases.map((args) => runCli(args)));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `${cases[i]?.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: cartero/);
    });
  });

  test('unknown command, unknown option, missing argument: exit 2', async () => {
    const cases = [['frobnicate'], ['user', 'add', 'a@b.test', '--colour'], ['domain', 'add'], ['user']];
    const results = await Promise.all(cases.map((args) => runCli(args)));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i]?.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.notEqual(r.stderr, '');
    });
  });
});

describe('directory administration', () => {
  let t: TempConfig;
  const c = (): string[] => ['-c', t.file];
  before(() => (t = tempConfig()));
  after(() => t.cleanup());

  test('db migrate applies the schema once', async () => {
    const first = await runCli(['db', 'migrate', '--json', ...c()]);
    assert.equal(first.code, 0, first.stderr);
    const applied = json<{ backend: string; applied: number[] }>(first.stdout);
    assert.equal(applied.backend, 'embedded');
    assert.ok(applied.applied.length > 0);
    const again = await runCli(['db', 'migrate', ...c()]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'embedded store: schema up to date\n');
  });

  test('domains: add, list, duplicate, remove', async () => {
    const add = await runCli(['domain', 'add', 'Example.TEST', '--json', ...c()]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(json<{ name: string }>(add.stdout).name, 'example.test');
    assert.equal((await runCli(['domain', 'add', 'other.test', ...c()])).stdout, 'domain other.test added\n');
    const dup = await runCli(['domain', 'add', 'example.test', ...c()]);
    assert.deepEqual([dup.code, dup.stderr], [1, 'cartero: domain example.test already exists\n']);
    const list = await runCli(['domain', 'list', '--json', ...c()]);
    assert.deepEqual(json<{ name: string }[]>(list.stdout).map((d) => d.name), ['example.test', 'other.test']);
    const table = await runCli(['domain', 'list', ...c()]);
    assert.match(table.stdout, /^DOMAIN\s+CREATED\nexample\.test\s+\d{4}-/);
    assert.equal((await runCli(['domain', 'remove', 'other.test', ...c()])).code, 0);
    const gone = await runCli(['domain', 'remove', 'other.test', ...c()]);
    assert.deepEqual([gone.code, gone.stderr], [1, 'cartero: domain other.test not found\n']);
  });

  test('users: add with password from stdin, list, quota, passwd, remove', async () => {
    const add = await runCli(['user', 'add', 'bob@example.test', '--password-stdin', '--quota', '10M', '--json', ...c()], {
      stdin: 'first secret\n',
    });
    assert.equal(add.code, 0, add.stderr);
    assert.deepEqual(json<Record<string, unknown>>(add.stdout), {
      ...json<Record<string, unknown>>(add.stdout),
      address: 'bob@example.test',
      hasPassword: true,
      quotaBytes: 10 * 1024 * 1024,
    });
    assert.doesNotMatch(add.stdout, /scrypt/);
    const nopw = await runCli(['user', 'add', 'carol@example.test', '--no-password', ...c()]);
    assert.equal(nopw.stdout, 'user carol@example.test added\n');

    const list = await runCli(['user', 'list', 'example.test', '--json', ...c()]);
    assert.deepEqual(
      json<{ address: string; hasPassword: boolean }[]>(list.stdout).map((u) => [u.address, u.hasPassword]),
      [['bob@example.test', true], ['carol@example.test', false]],
    );

    const quota = await runCli(['user', 'quota', 'bob@example.test', '--json', ...c()]);
    assert.deepEqual(json(quota.stdout), { address: 'bob@example.test', bytes: 0, messages: 0, limitBytes: 10485760 });
    assert.equal((await runCli(['user', 'quota', 'bob@example.test', 'none', ...c()])).stdout, 'quota of bob@example.test set to unlimited\n');

    const before = await hashOf(t, 'bob@example.test');
    assert.ok(before && (await verifyPassword('first secret', before)));
    const passwd = await runCli(['user', 'passwd', 'bob@example.test', '--password-stdin', ...c()], { stdin: 'second secret\n' });
    assert.equal(passwd.code, 0, passwd.stderr);
    const afterHash = await hashOf(t, 'bob@example.test');
    assert.notEqual(afterHash, before);
    assert.equal(await verifyPassword('second secret', afterHash), true);
    assert.equal(await verifyPassword('first secret', afterHash), false);

    const busy = await runCli(['domain', 'remove', 'example.test', ...c()]);
    assert.deepEqual([busy.code, busy.stderr], [1, 'cartero: domain example.test still has accounts or aliases; remove them first\n']);

    assert.equal((await runCli(['user', 'remove', 'carol@example.test', ...c()])).code, 0);
    const missing = await runCli(['user', 'remove', 'carol@example.test', ...c()]);
    assert.deepEqual([missing.code, missing.stdout, missing.stderr], [1, '', 'cartero: user carol@example.test not found\n']);
  });

  test('user errors: unknown domain (exit 1), missing password option or bad address (exit 2)', async () => {
    const r = await runCli(['user', 'add', 'eve@nowhere.test', '--no-password', ...c()]);
    assert.deepEqual([r.code, r.stderr], [1, 'cartero: domain nowhere.test not found\n']);
    const nopw = await runCli(['user', 'add', 'eve@example.test', ...c()]);
    assert.equal(nopw.code, 2);
    assert.match(nopw.stderr, /--password-stdin/);
    const bad = await runCli(['user', 'add', 'no-at-sign', '--no-password', ...c()]);
    assert.equal(bad.code, 2);
    const q = await runCli(['user', 'quota', 'nobody@example.test', ...c()]);
    assert.deepEqual([q.code, q.stderr], [1, 'cartero: user nobody@example.test not found\n']);
  });

  test('aliases: add, list, remove', async () => {
    const add = await runCli(['alias', 'add', 'postmaster@example.test', 'bob@example.test', 'root@example.test', '--json', ...c()]);
    assert.equal(add.code, 0, add.stderr);
    assert.deepEqual(json(add.stdout), { source: 'postmaster@example.test', targets: ['bob@example.test', 'root@example.test'] });
    const list = await runCli(['alias', 'list', '--json', ...c()]);
    assert.deepEqual(json(list.stdout), [{ source: 'postmaster@example.test', targets: ['bob@example.test', 'root@example.test'] }]);
    const table = await runCli(['alias', 'list', ...c()]);
    assert.match(table.stdout, /^SOURCE\s+TARGETS\npostmaster@example\.test\s+bob@example\.test, root@example\.test\n$/);
    const dup = await runCli(['alias', 'add', 'bob@example.test', 'x@example.test', ...c()]);
    assert.equal(dup.code, 1);
    assert.equal((await runCli(['alias', 'remove', 'postmaster@example.test', ...c()])).code, 0);
    const gone = await runCli(['alias', 'remove', 'postmaster@example.test', ...c()]);
    assert.deepEqual([gone.code, gone.stderr], [1, 'cartero: alias postmaster@example.test not found\n']);
  });
});

async function hashOf(t: TempConfig, address: string): Promise<string | null> {
  const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') });
  try {
    return (await store.directory.getAccount(address))?.passwordHash ?? null;
  } finally {
    await store.close();
  }
}
