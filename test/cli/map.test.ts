/*
 * `cartero map test`: runs the command in-process through runMap and main's error mapping (exit codes
 * and messages as the `cartero` binary prints them), against a temporary configuration with inline and
 * file tables.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { reportError } from '../../src/cli/main.js';
import { runMap } from '../../src/cli/map.js';
import { tempConfig, type TempConfig } from './helpers.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), readStdin: async () => '', readStdinBytes: async () => Buffer.alloc(0), env: { ...env } };
  let code: number;
  try {
    code = await runMap(argv, io);
  } catch (err) {
    code = reportError(err, io);
  }
  return { code, stdout, stderr };
}

describe('cartero map test', () => {
  let t: TempConfig;
  before(() => {
    t = tempConfig(
      [
        'domains: [example.test]',
        'delivery: { recipient_delimiter: "+" }',
        'virtual_alias_maps:',
        '  - { file: virtual }',
        '  - { "@depart.test": "%1@mail-server1.test", "gone@example.test": "error:5.1.1 moved" }',
        'transport_maps: { file: transport }',
        'canonical_maps: { "@legacy.test": "@example.test", postmaster: "root" }',
        '',
      ].join('\n'),
    );
    writeFileSync(join(t.dir, 'virtual'), '# virtual aliases\ninfo@example.test  bob@example.test,\n   carol@example.test\n');
    writeFileSync(join(t.dir, 'transport'), 'example.test local\n.corp.test relay:[gw.corp.test]:2525\n');
  });
  after(() => t.cleanup());

  test('virtual: file entry with a continuation, subaddress propagated, catch-all template, error target', async () => {
    const r = await run(['test', 'virtual_alias_maps', 'info+x@example.test', '-c', t.file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `virtual_alias_maps: info+x@example.test -> bob+x@example.test, carol+x@example.test (key info@example.test in file:${join(t.dir, 'virtual')})\n`);
    const j = await run(['test', 'virtual_alias_maps', 'Ann@depart.test', '--json', '-c', t.file]);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), {
      map: 'virtual_alias_maps',
      key: 'Ann@depart.test',
      found: true,
      matched_key: '@depart.test',
      source: 'inline:virtual_alias_maps[1]',
      value: '%1@mail-server1.test',
      targets: ['Ann@mail-server1.test'],
    });
    const e = await run(['test', 'virtual_alias_maps', 'gone@example.test', '--json', '-c', t.file]);
    assert.equal(JSON.parse(e.stdout).error, '5.1.1 moved');
  });

  test('transport: parent domain match shows the transport; canonical bare user form for a local domain', async () => {
    const r = await run(['test', 'transport_maps', 'x@a.corp.test', '-c', t.file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^transport_maps: x@a\.corp\.test -> relay:\[gw\.corp\.test\]:2525 \(key \.corp\.test in file:/);
    const c = await run(['test', 'canonical_maps', 'postmaster@example.test', '--json', '-c', t.file]);
    assert.equal(JSON.parse(c.stdout).value, 'root');
    const d = await run(['test', 'canonical_maps', '@legacy.test', '-c', t.file]);
    assert.equal(d.stdout, 'canonical_maps: @legacy.test -> @example.test (key @legacy.test in inline:canonical_maps)\n');
  });

  test('not found: exit 1; --json says found: false', async () => {
    const r = await run(['test', 'transport_maps', 'x@elsewhere.test', '-c', t.file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'transport_maps: x@elsewhere.test not found\n');
    const j = await run(['test', 'canonical_maps', 'postmaster@remote.test', '--json', '-c', t.file]);
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.stdout), { map: 'canonical_maps', key: 'postmaster@remote.test', found: false });
  });

  test('usage errors: unknown map, missing key, no command', async () => {
    const u = await run(['test', 'aliases', 'x', '-c', t.file]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /^cartero: map test: unknown map "aliases" \(expected canonical_maps, /);
    const m = await run(['test', 'canonical_maps', '-c', t.file]);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /missing argument/);
    assert.equal((await run([])).code, 2);
    const h = await run(['test', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^usage: cartero map test .*NAME KEY\n/);
  });

  test('a map that is not configured, a broken table file, a bad setting, a missing config', async () => {
    const bare = tempConfig('');
    try {
      const r = await run(['test', 'virtual_alias_maps', 'a@b.test', '-c', bare.file]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `cartero: virtual_alias_maps is not configured in ${bare.file}\n`);
    } finally {
      bare.cleanup();
    }
    writeFileSync(join(t.dir, 'transport'), 'example.test local\nbroken.test nonsense:x\n');
    const b = await run(['test', 'transport_maps', 'x@example.test', '-c', t.file]);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /^cartero: .*transport, line 2: broken\.test: "nonsense:x": unknown transport "nonsense"/);
    writeFileSync(join(t.dir, 'transport'), 'example.test local\n');

    const bad = tempConfig('relayhost: { host: "bad host", tls: maybe }\n');
    try {
      const r = await run(['test', 'transport_maps', 'x@y.test', '-c', bad.file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /relayhost\.host: found "bad host", expected a host name/);
      assert.match(r.stderr, /relayhost\.tls: found "maybe", expected "none", "may", "encrypt" or "verify"/);
    } finally {
      bad.cleanup();
    }
    const missing = await run(['test', 'transport_maps', 'x@y.test', '-c', join(t.dir, 'none.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /none\.yaml: found nothing, expected a readable configuration file \(ENOENT\)/);
  });
});
