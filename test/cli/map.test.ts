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

describe('cartero map set|delete|list|import (tables kept in the store)', () => {
  let t: TempConfig;
  before(() => {
    t = tempConfig(
      [
        'domains: [example.test]',
        'log: { level: info, format: json }',
        'virtual_alias_maps: [ { store: virtual }, { "@depart.test": "%1@other.test" } ]',
        'transport_maps: { store: transport }',
        '',
      ].join('\n'),
    );
  });
  after(() => t.cleanup());

  test('set, then map test resolves through the store table; change; delete; every change logged with who', async () => {
    const s = await run(['set', 'virtual', 'Info@Example.test', 'bob@example.test, carol@example.test', '-c', t.file]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, 'map virtual: info@example.test added (generation 1)\n');
    const line = JSON.parse(s.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(line.action, 'map_add');
    assert.equal(line.target, 'map:virtual');
    assert.match(String(line.msg), /^map:virtual: map_add by \S+ \(pid \d+\) on \S+ \(info@example\.test bob@example\.test, carol@example\.test\)$/);

    const q = await run(['test', 'virtual_alias_maps', 'info+x@example.test', '--json', '-c', t.file]);
    assert.equal(q.code, 0, q.stderr);
    const answer = JSON.parse(q.stdout) as Record<string, unknown>;
    assert.equal(answer.source, 'store:virtual');
    assert.deepEqual(answer.targets, ['bob+x@example.test', 'carol+x@example.test']);

    const c = await run(['set', 'virtual', 'info@example.test', 'dave@example.test', '--json', '-c', t.file]);
    assert.deepEqual(JSON.parse(c.stdout), { map: 'virtual', key: 'info@example.test', value: 'dave@example.test', created: false, generation: 2 });

    const l = await run(['list', 'virtual', '--json', '-c', t.file]);
    const rows = JSON.parse(l.stdout) as { key: string; value: string; updated_by: string }[];
    assert.deepEqual(rows.map((r) => [r.key, r.value]), [['info@example.test', 'dave@example.test']]);
    assert.match(rows[0]!.updated_by, / \(pid \d+\) on /);
    const all = await run(['list', '-c', t.file]);
    assert.match(all.stdout, /^NAME\s+ENTRIES\s+GENERATION\s+UPDATED\nvirtual\s+1\s+2\s/);

    const d = await run(['delete', 'virtual', 'INFO@example.test', '-c', t.file]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, 'map virtual: info@example.test deleted (generation 3)\n');
    const gone = await run(['delete', 'virtual', 'info@example.test', '-c', t.file]);
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, 'cartero: map virtual has no entry info@example.test\n');
    assert.equal((await run(['test', 'virtual_alias_maps', 'info@example.test', '-c', t.file])).code, 1);

    // the admin log every node shares holds the changes, with who made them
    const { openStore } = await import('../../src/store/index.js');
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') }, { migrate: false });
    try {
      const log = await store.queue.adminLog({ target: 'map:virtual' });
      assert.deepEqual(log.map((r) => r.action), ['map_add', 'map_change', 'map_delete']);
      assert.match(log[0]!.actor, / \(pid \d+\) on /);
    } finally {
      await store.close();
    }
  });

  test('a value that fails the check of the key using the table is refused with the reason', async () => {
    const r = await run(['set', 'transport', 'corp.test', 'uucp:host', '-c', t.file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'cartero: map transport: corp.test: "uucp:host": unknown transport "uucp" (expected local, lmtp, smtp, relay, error, discard or hold); nothing changed\n');
    const v = await run(['set', 'virtual', 'x@example.test', 'a@b.test %x', '-c', t.file]);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /unknown template "%x"/);
    const k = await run(['set', 'virtual', 'two words', 'a@b.test', '-c', t.file]);
    assert.equal(k.code, 1);
    assert.match(k.stderr, /invalid map key "two words"/);
    const n = await run(['set', 'bad/name', 'k', 'v', '-c', t.file]);
    assert.equal(n.code, 1);
    assert.match(n.stderr, /invalid map name "bad\/name"/);
    assert.equal(JSON.parse((await run(['list', 'transport', '--json', '-c', t.file])).stdout).length, 0);
    // a table no key uses is stored unchecked, with a note
    const u = await run(['set', 'unused', 'k', 'anything', '-c', t.file]);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stderr, /note: no \*_maps key of .* uses \{ store: unused \}; values are stored unchecked/);
  });

  test('import replaces the table in one go; a malformed file names file and line and changes nothing', async () => {
    const file = join(t.dir, 'transport.txt');
    writeFileSync(file, '# from main.cf days\nexample.test  local\n.corp.test    :[gw.corp.test]\nfar.test      smtp:\nfar.test      relay:\n');
    const r = await run(['import', 'transport', file, '-c', t.file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `map transport: imported ${file}, 3 entries: 3 added, 0 changed, 0 removed, 0 unchanged (generation 1)\n`);
    assert.match(r.stderr, /transport\.txt, line 5: duplicate entry "far\.test" ignored \(first at line 4\)/);
    const q = await run(['test', 'transport_maps', 'x@a.corp.test', '-c', t.file]);
    assert.match(q.stdout, /-> the default transport of the domain's class, nexthop \[gw\.corp\.test\] \(key \.corp\.test in store:transport\)/);

    writeFileSync(file, 'example.test local\nbroken.test nonsense:x\n');
    const b = await run(['import', 'transport', file, '-c', t.file]);
    assert.equal(b.code, 1);
    assert.equal(b.stderr, `cartero: ${file}, line 2: broken.test: "nonsense:x": unknown transport "nonsense" (expected local, lmtp, smtp, relay, error, discard or hold); map transport unchanged\n`);
    writeFileSync(file, 'example.test local\n  \nnovalue\n');
    const s = await run(['import', 'transport', file, '-c', t.file]);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /transport\.txt, line 3: expected "key whitespace value", found "novalue"; map transport unchanged/);
    const m = await run(['import', 'transport', join(t.dir, 'missing.txt'), '-c', t.file]);
    assert.equal(m.code, 1);
    assert.match(m.stderr, /missing\.txt: cannot read the file \(ENOENT\); map transport unchanged/);
    assert.equal(JSON.parse((await run(['list', 'transport', '--json', '-c', t.file])).stdout).length, 3);

    writeFileSync(file, 'example.test local\n');
    const again = await run(['import', 'transport', file, '--json', '-c', t.file]);
    assert.deepEqual(JSON.parse(again.stdout), { map: 'transport', file, entries: 1, added: 0, changed: 0, removed: 2, unchanged: 1, generation: 2 });
  });

  test('usage errors', async () => {
    assert.equal((await run(['set', 'virtual', 'k', '-c', t.file])).code, 2);
    assert.equal((await run(['import', 'virtual', '-c', t.file])).code, 2);
    const u = await run(['test', 'virtual', 'x@example.test', '-c', t.file]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /map test: unknown map "virtual" \(expected canonical_maps, /);
  });
});
