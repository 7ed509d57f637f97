import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseUrl, dropLabDatabase, isLabDatabaseName, redactUrl } from './database.js';
import { finalNodeConfig } from './runner.js';
import { LabError } from './state.js';
import { parseTopology } from './topology.js';

const NODES = `
name: c
nodes:
  - { name: n1, address: 127.0.0.11, config: n1.yaml }
`;

test('a topology may ask for a fresh database, on the default server or a named one', () => {
  const none = parseTopology(NODES);
  assert.ok('topology' in none);
  assert.equal(none.topology.postgres, undefined);
  const fresh = parseTopology(`${NODES}postgres: { database: fresh }\n`);
  assert.ok('topology' in fresh);
  assert.deepEqual(fresh.topology.postgres, { database: 'fresh' });
  const named = parseTopology(`${NODES}postgres: { database: fresh, server: "postgres://postgres@127.0.0.1:5433/postgres" }\n`);
  assert.ok('topology' in named);
  assert.equal(named.topology.postgres?.server, 'postgres://postgres@127.0.0.1:5433/postgres');
});

test('a bad postgres section is reported with its key', () => {
  for (const [text, key] of [
    ['postgres: { database: cartero }', 'postgres.database'],
    ['postgres: { database: fresh, server: "mysql://x/y" }', 'postgres.server'],
    ['postgres: { database: fresh, url: "postgres://x/y" }', 'postgres'],
    ['postgres: fresh', 'postgres'],
  ] as const) {
    const r = parseTopology(`${NODES}${text}\n`);
    assert.ok('problems' in r, text);
    assert.ok(r.problems.some((p) => p.key.startsWith(key)), `${text}: ${JSON.stringify(r.problems)}`);
  }
});

test('the lab database URL keeps the server, user and options and replaces only the database', () => {
  assert.equal(databaseUrl('postgres://postgres@127.0.0.1:5432/postgres', 'cartero_lab_0011223344aa'), 'postgres://postgres@127.0.0.1:5432/cartero_lab_0011223344aa');
  assert.equal(databaseUrl('postgresql://u:pw@127.0.0.1:5433/x?sslmode=disable', 'cartero_lab_00112233'), 'postgresql://u:pw@127.0.0.1:5433/cartero_lab_00112233?sslmode=disable');
  assert.throws(() => databaseUrl('not a url', 'cartero_lab_00112233'), LabError);
  assert.throws(() => databaseUrl('http://127.0.0.1/x', 'cartero_lab_00112233'), LabError);
  assert.equal(redactUrl('postgres://u:secret@h/db'), 'postgres://u:***@h/db');
  assert.equal(redactUrl('::'), '<unparsable url>');
});

test('only names the lab made are ever dropped, whatever a damaged state file says', async () => {
  assert.ok(isLabDatabaseName('cartero_lab_0a1b2c3d4e5f'));
  for (const name of ['postgres', 'template1', 'cartero', 'cartero_lab_', 'cartero_lab_XYZ12345', 'cartero_lab_00112233"; DROP DATABASE postgres; --', 'cartero_lab_0011223344\n']) {
    assert.equal(isLabDatabaseName(name), false, JSON.stringify(name));
    // refused before any connection is attempted (the server below does not exist)
    await assert.rejects(dropLabDatabase('postgres://postgres@127.0.0.1:1/postgres', name), /not a lab database name/);
  }
});

test('a node whose store is postgres gets the lab database URL; embedded stores stay under the state directory', () => {
  const pgNode = finalNodeConfig({ store: { backend: 'postgres', url: 'postgres://db1,db2/cartero', pool_size: 8 } }, '/lab/nodes/n1', '127.0.0.1:53', 'postgres://postgres@127.0.0.1:5432/cartero_lab_00112233');
  assert.deepEqual(pgNode['store'], { backend: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/cartero_lab_00112233', pool_size: 8 });
  const kept = finalNodeConfig({ store: { backend: 'postgres', url: 'postgres://db1/cartero' } }, '/lab/nodes/n1', '127.0.0.1:53');
  assert.deepEqual(kept['store'], { backend: 'postgres', url: 'postgres://db1/cartero' });
  const embedded = finalNodeConfig({}, '/lab/nodes/n1', '127.0.0.1:53', 'postgres://postgres@127.0.0.1:5432/cartero_lab_00112233');
  assert.deepEqual(embedded['store'], { backend: 'embedded', path: '/lab/nodes/n1/data' });
});
