/*
 * `cartero user add|passwd --password-hash`: an existing hash (Dovecot's {SHA512-CRYPT}, crypt(3) $6$,
 * a Cartero $scrypt$) is stored as given and verifies at login; anything else is refused (exit 2).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import { openStore } from '../../src/store/index.js';
import { join } from 'node:path';
import { runCli, tempConfig, type TempConfig } from './helpers.js';

// from the SHA-crypt specification's test vectors: password "Hello world!"
const SHA512 = '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1';

describe('user --password-hash', () => {
  let t: TempConfig;
  const c = (): string[] => ['-c', t.file];
  before(async () => {
    t = tempConfig();
    assert.equal((await runCli(['domain', 'add', 'example.test', ...c()])).code, 0);
  });
  after(() => t.cleanup());

  async function hashOf(address: string): Promise<string | null> {
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') }, { migrate: false });
    try {
      return (await store.directory.getAccount(address))?.passwordHash ?? null;
    } finally {
      await store.close();
    }
  }

  test('add and passwd store the hash as given; it verifies', async () => {
    const add = await runCli(['user', 'add', 'dan@example.test', '--password-hash', `{SHA512-CRYPT}${SHA512}`, ...c()]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await hashOf('dan@example.test'), `{SHA512-CRYPT}${SHA512}`);
    assert.equal(await verifyPassword('Hello world!', await hashOf('dan@example.test')), true);
    const passwd = await runCli(['user', 'passwd', 'dan@example.test', '--password-hash', SHA512, ...c()]);
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.equal(await hashOf('dan@example.test'), SHA512);
  });

  test('bad input: an unknown or malformed hash, and two password options at once (exit 2)', async () => {
    const cases = [
      ['user', 'add', 'x@example.test', '--password-hash', '{PLAIN}secret'],
      ['user', 'add', 'x@example.test', '--password-hash', '$6$salt$tooshort'],
      ['user', 'add', 'x@example.test', '--password-hash', ''],
      ['user', 'add', 'x@example.test', '--password-hash', SHA512, '--no-password'],
      ['user', 'add', 'x@example.test', '--password-hash', SHA512, '--password-stdin'],
      ['user', 'passwd', 'dan@example.test', '--password-hash', '{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu'],
    ];
    for (const args of cases) {
      const r = await runCli([...args, ...c()]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /--password-hash|one of/);
    }
    assert.equal(await hashOf('x@example.test'), null);
  });
});
