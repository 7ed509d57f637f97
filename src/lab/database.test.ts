import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseUrl, dropLabDatabase, isLabDatabaseName, redactUrl } from './database.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from '../cli/context.js';
import { runLab } from '../cli/lab.js';
import { finalNodeConfig, labPg, loadTopology, resolveTopology } from './runner.js';
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

test('multi-host server URLs (libpq form) are rewritten as text: hosts, user and options kept', () => {
  assert.equal(
    databaseUrl('postgres://postgres@127.0.0.1:5432,127.0.0.1:5433/postgres?target_session_attrs=read-write', 'cartero_lab_00112233'),
    'postgres://postgres@127.0.0.1:5432,127.0.0.1:5433/cartero_lab_00112233?target_session_attrs=read-write',
  );
  assert.equal(databaseUrl('postgresql://u:pw@db1,db2', 'cartero_lab_00112233'), 'postgresql://u:pw@db1,db2/cartero_lab_00112233');
  assert.equal(databaseUrl('postgres://db1:5432,[::1]:5433/x?sslmode=disable', 'cartero_lab_00112233'), 'postgres://db1:5432,[::1]:5433/cartero_lab_00112233?sslmode=disable');
  // bad host lists are refused with the store parser's reason, as LabError
  for (const bad of ['postgres://db1:99999,db2/x', 'postgres://db1,,db2/x', 'postgres://db1,db2/x?target_session_attrs=standby']) {
    assert.throws(() => databaseUrl(bad, 'cartero_lab_00112233'), LabError, bad);
  }
  assert.equal(redactUrl('postgres://u:secret@db1:5432,db2:5433/db?target_session_attrs=read-write'), 'postgres://u:***@db1:5432,db2:5433/db?target_session_attrs=read-write');
  assert.equal(redactUrl('postgres://u@db1,db2/db'), 'postgres://u@db1,db2/db');
  assert.equal(redactUrl('postgres://db1,db2/db'), 'postgres://db1,db2/db');
});

test('a topology may have the lab start its own primary and standby, but not also name a server', () => {
  const ha = parseTopology(`${NODES}postgres: { database: fresh, replication: { synchronous: false } }\n`);
  assert.ok('topology' in ha);
  assert.deepEqual(ha.topology.postgres, { database: 'fresh', replication: { synchronous: false } });
  const dflt = parseTopology(`${NODES}postgres: { database: fresh, replication: {} }\n`);
  assert.ok('topology' in dflt);
  assert.equal(dflt.topology.postgres?.replication?.synchronous, true);
  for (const [text, key] of [
    ['postgres: { database: fresh, server: "postgres://h/p", replication: {} }', 'postgres.server'],
    ['postgres: { database: fresh, replication: { synchronous: yes please } }', 'postgres.replication.synchronous'],
    ['postgres: { database: fresh, replication: { standbys: 2 } }', 'postgres.replication'],
  ] as const) {
    const r = parseTopology(`${NODES}${text}\n`);
    assert.ok('problems' in r, text);
    assert.ok(r.problems.some((p) => p.key.startsWith(key)), `${text}: ${JSON.stringify(r.problems)}`);
  }
});

test('the lab runs the cluster-ha example: both servers, synchronous, nodes on their own addresses', () => {
  const t = loadTopology(resolveTopology('cluster-ha'));
  assert.deepEqual(t.postgres, { database: 'fresh', replication: { synchronous: true } });
  assert.deepEqual(t.nodes.map((n) => n.address), ['127.0.0.21', '127.0.0.22', '127.0.0.23']);
});

test('lab pg: bad actions and server names are usage errors; a lab without servers of its own is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-lab-pg-cli-'));
  const io: Io = { out: () => undefined, err: () => undefined, readStdin: async () => '', readStdinBytes: async () => Buffer.alloc(0), env: {} };
  try {
    await assert.rejects(runLab(['pg', 'explode', 'primary', '--dir', dir], io), /must be one of stop, crash, start, promote/);
    await assert.rejects(runLab(['pg', 'crash', 'tertiary', '--dir', dir], io), /primary or standby/);
    await assert.rejects(runLab(['pg', 'crash', '--dir', dir], io));
    await assert.rejects(runLab(['pg', 'crash', 'primary', '--dir', dir], io), /no lab in/);
    // a lab whose database is on an existing server: nothing of the lab's own to crash
    const state = { version: 1, topology: 'cluster', topologyDir: dir, createdAt: new Date().toISOString(), dns: { pid: null, address: '127.0.0.1', port: 53 }, nodes: {}, postgres: { server: 'postgres://postgres@127.0.0.1:1/postgres', database: 'cartero_lab_00112233' } };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    await assert.rejects(labPg(dir, 'primary', 'crash'), /did not start PostgreSQL servers of its own/);
    await assert.rejects(runLab(['pg', 'promote', 'standby', '--dir', dir], io), /did not start PostgreSQL servers of its own/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
