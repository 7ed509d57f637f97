import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UsageError } from '../../src/cli/args.js';
import { runCluster } from '../../src/cli/cluster.js';
import type { Io } from '../../src/cli/context.js';
import { openStore } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

function captureIo(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readStdin: async () => '',
    readStdinBytes: async () => Buffer.alloc(0),
    env: {},
    stdout: () => out,
    stderr: () => err,
  };
}

describe('cartero cluster status', () => {
  let db: TestDatabase | null = null;
  let skipped = '';
  let dir = '';
  let file = '';
  before(async () => {
    const created = await createTestDatabase();
    if ('skipped' in created) skipped = created.skipped;
    else db = created;
    dir = mkdtempSync(join(tmpdir(), 'cartero-cluster-cli-'));
    file = join(dir, 'cartero.yaml');
    if (db) writeFileSync(file, `hostname: mx.example.test\nstore: { backend: postgres, url: "${db.url}" }\n`);
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('shows nodes alive and dead with their leases, queue depth, job holders and the database', async (t) => {
    if (!db) return t.skip(skipped);
    const store = await openStore({ backend: 'postgres', url: db.url });
    const now = Date.now();
    try {
      await store.cluster.register({ name: 'mx1', hostname: 'vm', pid: 11, roles: ['smtp', 'imap'], version: '0.1.0', heartbeatMs: 5000 }, now);
      await store.cluster.register({ name: 'mx2\u001b', hostname: 'vm', pid: 12, roles: ['smtp'], version: '0.1.0', heartbeatMs: 5000 }, now).catch(() => undefined);
      await store.cluster.register({ name: 'mx3', hostname: 'vm', pid: 13, roles: ['lmtp'], version: '0.1.0', heartbeatMs: 1000 }, now - 60_000);
      for (let i = 0; i < 4; i++) await store.queue.commit({ sender: 's@x.test', recipients: [{ address: `r${i}@x.test` }], content: Buffer.from(`m${i}`) }, now);
      await store.queue.lease({ owner: 'mx3:13', limit: 2, leaseMs: 300_000, now });
      const { id } = await store.queue.commit({ sender: 's@x.test', recipients: [{ address: 'h@x.test' }], content: Buffer.from('held'), hold: true }, now);
      assert.ok(id);
      const locks = await store.cluster.openJobLocks('mx1');
      assert.equal(await locks.tryAcquire('blob-gc', now), true);

      const io = captureIo();
      assert.equal(await runCluster(['status', '-c', file], io), 0);
      const text = io.stdout();
      assert.match(text, /2 nodes registered, 1 alive/);
      assert.match(text, /^mx1 +alive +\d+ms ago +0 +imap,smtp +vm\/11/m);
      assert.match(text, /^mx3 +DEAD +6\ds ago +2 +lmtp/m, 'the dead node still shows the leases it held');
      assert.match(text, /queue: 4 active \(2 due now, 2 being delivered\), 1 held/);
      assert.match(text, /^blob-gc +mx1 /m);
      assert.match(text, /database: PostgreSQL \d[^\n]* at 127\.0\.0\.1:\d+, primary/);
      assert.match(text, /synchronous_commit=on/);

      const json = captureIo();
      assert.equal(await runCluster(['status', '--json', '--missed', '100', '-c', file], json), 0);
      const parsed = JSON.parse(json.stdout()) as {
        nodes: { name: string; alive: boolean; leases: number }[];
        queue: { active: number; held: number };
        jobs: { job: string; node: string }[];
        database: { inRecovery: boolean };
      };
      assert.deepEqual(parsed.nodes.map((n) => [n.name, n.alive, n.leases]), [['mx1', true, 0], ['mx3', true, 2]], '--missed 100: mx3 counts as alive');
      assert.equal(parsed.queue.held, 1);
      assert.deepEqual(parsed.jobs, [{ job: 'blob-gc', node: 'mx1', since: parsed.jobs[0] && (parsed.jobs[0] as unknown as { since: string }).since }]);
      assert.equal(parsed.database.inRecovery, false);

      await locks.close();
      const after = captureIo();
      await runCluster(['status', '-c', file], after);
      assert.match(after.stdout(), /^blob-gc +\(nobody\)/m, 'a closed lock session holds nothing');
    } finally {
      await store.close();
    }
  });

  test('usage errors', async () => {
    await assert.rejects(runCluster(['status', '--missed', 'x', '-c', file], captureIo()), UsageError);
    await assert.rejects(runCluster(['status', '--missed', '0', '-c', file], captureIo()), UsageError);
    await assert.rejects(runCluster(['status', 'extra', '-c', file], captureIo()), UsageError);
    await assert.rejects(runCluster(['nodes'], captureIo()), UsageError);
    const io = captureIo();
    assert.equal(await runCluster([], io), 2);
    assert.match(io.stderr(), /cartero cluster status/);
  });

  test('on the embedded store: the one node, no database view', async () => {
    const edir = mkdtempSync(join(tmpdir(), 'cartero-cluster-emb-'));
    try {
      const efile = join(edir, 'cartero.yaml');
      writeFileSync(efile, 'hostname: solo.example.test\nstore: { backend: embedded, path: ./data }\n');
      const store = await openStore({ backend: 'embedded', path: join(edir, 'data') });
      await store.cluster.register({ name: 'solo.example.test', hostname: 'vm', pid: 1, roles: ['smtp'], version: '0.1.0', heartbeatMs: 5000 }, Date.now());
      await store.close();
      const io = captureIo();
      assert.equal(await runCluster(['status', '-c', efile], io), 0);
      assert.match(io.stdout(), /1 node registered, 1 alive \(store: embedded\)/);
      assert.match(io.stdout(), /database: embedded store/);
    } finally {
      rmSync(edir, { recursive: true, force: true });
    }
  });
});
