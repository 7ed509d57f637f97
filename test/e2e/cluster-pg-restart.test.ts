/*
 * T8 end to end (issue 8 item 6 c): PostgreSQL restarted under load. The `cluster` lab runs on a
 * private PostgreSQL (test/cluster/private-pg.ts; never the machine's server, which other tests share)
 * and 20 SMTP sessions spread over the three nodes keep sending while the server is stopped for a few
 * seconds and started again. While it is down every answer is a 4xx (never 5xx, never a 250 that was
 * not committed); afterwards the nodes resume by themselves, every 250 is in its mailbox exactly once
 * and the queue drains. CI sends 200 messages; CARTERO_E2E_FULL=1 sends 2,000.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startPrivatePg, type PrivatePg } from '../cluster/private-pg.js';
import { ClusterLab, countDelivered, FailoverLoad, NODES, until } from './cluster-harness.js';

const FULL = process.env['CARTERO_E2E_FULL'] === '1';
const TOTAL = FULL ? 2_000 : 200;
const DOWN_MS = 3_000;

describe('T8 cluster: PostgreSQL restarted under load', { timeout: 300_000 }, () => {
  let pgServer: PrivatePg | null = null;
  let skipped = '';
  let lab: ClusterLab | null = null;

  before(async () => {
    const started = await startPrivatePg();
    if ('skipped' in started) {
      skipped = started.skipped;
      return;
    }
    pgServer = started;
    lab = await ClusterLab.up({ postgresServer: pgServer.url() });
  });
  after(async () => {
    await lab?.down().catch((err: unknown) => console.error(`lab down: ${String(err)}`));
    await pgServer?.destroy();
  });

  test(`(c) ${TOTAL} messages from 20 sessions; PostgreSQL stopped for ${DOWN_MS / 1000} s in the middle: only 4xx meanwhile, 0 lost, 0 duplicated`, { timeout: FULL ? 900_000 : 150_000 }, async (t) => {
    if (!pgServer || !lab) return t.skip(skipped);
    const db = pgServer;
    const c = lab;
    // a sender that finds the database down waits and tries again: 40 rounds over the three nodes
    const load = new FailoverLoad(c, { sessions: 20, attempts: 120, retryDelayMs: 250 });
    let stoppedAt = 0;
    let downFor = 0;
    let deferredBefore = 0;
    let deferredWhileDown = 0;
    let outage: Promise<void> | null = null;
    await load.run(TOTAL, (done) => {
      if (stoppedAt === 0 && done >= TOTAL / 3) {
        stoppedAt = Date.now();
        deferredBefore = load.deferredAttempts;
        outage = (async () => {
          await db.stop('fast');
          await new Promise((r) => setTimeout(r, DOWN_MS));
          downFor = Date.now() - stoppedAt;
          deferredWhileDown = load.deferredAttempts - deferredBefore;
          await db.start();
        })();
      }
    });
    await outage;
    const reasons = [...load.reasons];
    const notTemporary = reasons.filter(([r]) => !/\b4\d\d[ -]/.test(r));
    await until('every 250 in its mailbox', async () => {
      const ids = await c.mailboxIds();
      return [...load.accepted].every((id) => ids.has(id));
    }, FULL ? 600_000 : 90_000);
    await until('the queue to drain', async () => (await c.queue()).active === 0, 60_000);
    const counts = countDelivered(load, await c.mailboxIds());
    console.log(
      `T8 PostgreSQL restart: sent ${counts.sent}, 250 ${counts.accepted}, delivered ${counts.delivered}, lost ${counts.lost}, duplicates ${counts.duplicates}, ` +
        `refused (5xx) ${load.refused}, gave up ${load.gaveUp}; database down ${(downFor / 1000).toFixed(1)} s, ${deferredWhileDown} attempts answered 4xx meanwhile ` +
        `(${load.deferredAttempts} in all); replies: ${JSON.stringify(reasons.slice(0, 4))}`,
    );
    assert.ok(deferredWhileDown > 0, 'the clients met the outage');
    assert.deepEqual(notTemporary, [], 'while the database was down every refusal was a 4xx reply (the nodes stayed up)');
    assert.equal(load.refused, 0);
    assert.equal(counts.accepted, TOTAL, 'every message got its 250 once the database was back');
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0, `duplicated: ${counts.duplicateIds.slice(0, 5).join(' ')}`);
    for (const node of NODES) assert.ok((load.perNode.get(node) ?? 0) > 0, `${node} took part`);
  });
});
