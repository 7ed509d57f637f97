/*
 * T8 end to end (issue 8 item 6 e): the `cluster-ha` lab — three `cartero serve` nodes on 127.0.0.21–23
 * over a PostgreSQL primary and a synchronous streaming-replication standby that the lab starts itself
 * (src/lab/pg-servers.ts). SMTP sessions spread over the nodes keep sending while the primary is
 * crashed (`pg_ctl stop -m immediate`) and, a moment later, the standby promoted (`pg_ctl promote`), as
 * a failover manager would. The nodes' store URL lists both servers with target_session_attrs=read-write,
 * so they follow the promotion by themselves. Checked: while there is no primary every refusal is a 4xx;
 * with synchronous_commit = remote_apply every message that got its 250 before the crash is in the
 * promoted database; everything accepted is delivered, 0 lost, 0 duplicated (a client's resend of a
 * message whose 250 died with the primary is not filed again: delivery.duplicate_suppression_window); the failover time the clients saw (first 4xx → first 250 after promotion).
 * CI sends 150 messages from 10 sessions; CARTERO_E2E_FULL=1 sends 3,000 from 20.
 * Its own addresses (127.0.0.21–23) and servers: it may run beside the `cluster` lab's tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { destroyPgServersSync, pgBinDir, serverUrl, type PgServers } from '../../src/lab/pg-servers.js';
import { labPg, packageRoot } from '../../src/lab/runner.js';
import { ClusterLab, countDelivered, FailoverLoad, NODES, until } from './cluster-harness.js';

const run = promisify(execFile);
const FULL = process.env['CARTERO_E2E_FULL'] === '1';
const TOTAL = FULL ? 3_000 : 150;
const SESSIONS = FULL ? 20 : 10;
/** how long after the crash the standby is promoted: a failover manager's detection time, shortened */
const PROMOTE_AFTER_MS = 1_000;

interface LabStatusJson {
  database: { database: string; servers: { name: string; state: string; role: string | null }[] } | null;
}

/** The Message-IDs in a database (queue entries and mailbox messages share the blobs table). */
async function messageIdsIn(url: string): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const rows = (await client.query<{ head: Buffer }>('SELECT substring(content from 1 for 4096) AS head FROM blobs')).rows;
    const ids = new Set<string>();
    for (const r of rows) {
      const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(r.head.toString('latin1'))?.[1];
      if (id) ids.add(id);
    }
    return ids;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('T8 cluster-ha: three nodes over a PostgreSQL primary + synchronous standby', { timeout: 300_000 }, () => {
  let lab: ClusterLab | null = null;
  let servers: PgServers | null = null;
  let skipped = '';
  const lastResort = () => {
    if (servers) destroyPgServersSync(servers);
  };

  before(async () => {
    if (!pgBinDir()) {
      skipped = 'no PostgreSQL server binaries (initdb, pg_basebackup) under /usr/lib/postgresql';
      if (process.env['CI'] === 'true') throw new Error(skipped);
      return;
    }
    lab = await ClusterLab.up({ topology: 'cluster-ha' });
    servers = lab.state.postgres?.servers ?? null;
    process.once('exit', lastResort);
  });
  after(async () => {
    await lab?.down().catch((err: unknown) => console.error(`lab down: ${String(err)}`));
    process.off('exit', lastResort);
  });

  test('`lab status` shows both servers; `cluster status` shows the synchronous standby streaming', { timeout: 60_000 }, async (t) => {
    if (!lab) return t.skip(skipped);
    const { stdout } = await run(process.execPath, [join(packageRoot(), 'bin', 'cartero.js'), 'lab', 'status', '--json', '--dir', lab.dir], { timeout: 30_000 });
    const s = JSON.parse(stdout) as LabStatusJson;
    assert.deepEqual(
      s.database?.servers.map((x) => [x.name, x.state, x.role]),
      [
        ['primary', 'up', 'primary'],
        ['standby', 'up', 'standby'],
      ],
    );
    const { stdout: cs } = await run(process.execPath, [join(packageRoot(), 'bin', 'cartero.js'), 'cluster', 'status', '--json', '-c', lab.state.nodes['node1']!.config], { timeout: 30_000 });
    const db = (JSON.parse(cs) as { database: { inRecovery: boolean; synchronousCommit: string; synchronousStandbyNames: string; replicas: { name: string; state: string; syncState: string }[] } }).database;
    assert.equal(db.inRecovery, false);
    assert.equal(db.synchronousCommit, 'remote_apply');
    assert.equal(db.synchronousStandbyNames, '*');
    assert.deepEqual(
      db.replicas.map((r) => [r.name, r.state, r.syncState]),
      [['standby', 'streaming', 'sync']],
    );
  });

  test(`(e) ${TOTAL} messages from ${SESSIONS} sessions; the primary crashes and the standby is promoted: only 4xx meanwhile, every 250 survives, 0 lost`, { timeout: FULL ? 1_200_000 : 180_000 }, async (t) => {
    if (!lab || !servers) return t.skip(skipped);
    const c = lab;
    const standby = servers.servers.find((x) => x.name === 'standby')!;
    const load = new FailoverLoad(c, { sessions: SESSIONS, attempts: 200, retryDelayMs: 250 });
    let killedAt = 0;
    let promotedAt = 0;
    let acceptedBeforeKill = new Set<string>();
    let acceptedAtPromotion = 0;
    let deferredAtKill = 0;
    let firstRefusal = 0;
    let firstAcceptAfterPromotion = 0;
    // the clients' view, sampled: when the first 4xx after the crash and the first 250 after the promotion came
    const sampler = setInterval(() => {
      if (killedAt > 0 && firstRefusal === 0 && load.deferredAttempts > deferredAtKill) firstRefusal = Date.now();
      if (promotedAt > 0 && firstAcceptAfterPromotion === 0 && load.accepted.size > acceptedAtPromotion) firstAcceptAfterPromotion = Date.now();
    }, 5);
    let failover: Promise<void> | null = null;
    const started = Date.now();
    try {
      await load.run(TOTAL, (done) => {
        if (killedAt === 0 && done >= TOTAL / 3) {
          killedAt = Date.now();
          acceptedBeforeKill = new Set(load.accepted);
          deferredAtKill = load.deferredAttempts;
          failover = (async () => {
            await labPg(c.dir, 'primary', 'crash');
            await new Promise((r) => setTimeout(r, Math.max(0, killedAt + PROMOTE_AFTER_MS - Date.now())));
            acceptedAtPromotion = load.accepted.size;
            await labPg(c.dir, 'standby', 'promote');
            promotedAt = Date.now();
          })();
        }
      });
      await failover;
    } finally {
      clearInterval(sampler);
    }
    const loadSeconds = (Date.now() - started) / 1000;
    const reasons = [...load.reasons];
    const notTemporary = reasons.filter(([r]) => !/\b4\d\d[ -]/.test(r));

    // synchronous replication: every 250 sent before the crash is in the promoted database
    const inPromoted = await messageIdsIn(serverUrl(standby, c.state.postgres!.database));
    const missingAfterPromotion = [...acceptedBeforeKill].filter((id) => !inPromoted.has(id));

    await until('every 250 in its mailbox', async () => {
      const ids = await c.mailboxIds();
      return [...load.accepted].every((id) => ids.has(id));
    }, FULL ? 900_000 : 120_000);
    await until('the queue to drain', async () => (await c.queue()).active === 0, 60_000);
    const counts = countDelivered(load, await c.mailboxIds());
    const unexplained = counts.duplicateIds.filter((id) => !load.interrupted.has(id));
    const failoverMs = firstRefusal > 0 && firstAcceptAfterPromotion > 0 ? firstAcceptAfterPromotion - firstRefusal : -1;
    console.log(
      `T8 database failover: sent ${counts.sent}, 250 ${counts.accepted} (${acceptedBeforeKill.size} before the crash, ${missingAfterPromotion.length} of them missing from the promoted standby), ` +
        `delivered ${counts.delivered}, lost ${counts.lost}, duplicates ${counts.duplicates} (${counts.duplicates - unexplained.length} of them with a 250 lost in the crash), ` +
        `refused (5xx) ${load.refused}, gave up ${load.gaveUp}, ${load.deferredAttempts} attempts answered 4xx or cut; ` +
        `standby promoted ${((promotedAt - killedAt) / 1000).toFixed(1)} s after the crash; clients saw the failover (first 4xx → first 250 after promotion) in ${(failoverMs / 1000).toFixed(2)} s, ` +
        `first 250 ${firstAcceptAfterPromotion > 0 ? firstAcceptAfterPromotion - promotedAt : -1} ms after pg_ctl promote returned; 250s by node ${JSON.stringify(Object.fromEntries(load.perNode))}; load took ${loadSeconds.toFixed(1)} s; ` +
        `replies: ${JSON.stringify(reasons.slice(0, 4))}`,
    );
    if (notTemporary.length > 0 || counts.lost > 0) for (const n of NODES) console.log(`--- ${n} log tail\n${c.logTail(n)}`);
    assert.ok(firstRefusal > 0, 'the clients met the outage');
    assert.deepEqual(notTemporary, [], 'while there was no primary every refusal was a 4xx reply');
    assert.equal(load.refused, 0);
    assert.deepEqual(missingAfterPromotion, [], 'synchronous replication: every 250 before the crash is in the promoted standby');
    assert.equal(counts.accepted, TOTAL, 'every message got its 250 once the standby was promoted');
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0, `duplicated: ${counts.duplicateIds.slice(0, 5).join(' ')}`);
    assert.ok(failoverMs > 0 && failoverMs < 30_000, `failover seen by clients within 30 s (${failoverMs} ms)`);
  });
});
