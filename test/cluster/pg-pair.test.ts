/*
 * What the replication setting means for an acknowledged commit when the primary is lost (issue 8, 6e),
 * on a private primary + streaming standby (private-pg-pair.ts). Asynchronous replication (the default):
 * a commit acknowledged while the standby lags is gone after the primary crashes and the standby is
 * promoted — shown deterministically by stopping the standby first. Synchronous (remote_apply with
 * synchronous_standby_names = '*'): a commit is not acknowledged until the standby has applied it, so
 * with the standby away it waits instead of answering, and everything acknowledged survives promotion.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPrivatePgPair, type PrivatePgPair } from './private-pg-pair.js';

async function withPair(synchronous: boolean, t: { skip(m: string): void }, fn: (p: PrivatePgPair) => Promise<void>): Promise<void> {
  const pair = await startPrivatePgPair({ synchronous });
  if ('skipped' in pair) return t.skip(pair.skipped);
  try {
    await fn(pair);
  } finally {
    await pair.destroy();
  }
}

test('asynchronous replication: a commit acknowledged while the standby lags is lost when the primary dies', { timeout: 60_000 }, async (t) => {
  await withPair(false, t, async (pair) => {
    await pair.sql('primary', 'CREATE TABLE mail (id text PRIMARY KEY)');
    await pair.sql('primary', "INSERT INTO mail VALUES ('before')");
    // wait until the standby has it, then take the standby away: it lags from here on
    for (let i = 0; i < 100 && (await pair.sql('standby', "SELECT 1 FROM mail WHERE id = 'before'").catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await pair.stop('standby');
    const t0 = Date.now();
    await pair.sql('primary', "INSERT INTO mail VALUES ('acknowledged')"); // the "250"
    const ackMs = Date.now() - t0;
    await pair.stop('primary', 'immediate');
    await pair.start('standby');
    await pair.promote('standby');
    const ids = (await pair.sql('standby', 'SELECT id FROM mail ORDER BY id')).map((r) => r['id'] as string);
    console.log(`async replication: commit acknowledged in ${ackMs} ms with the standby down; after crash + promotion the table holds ${JSON.stringify(ids)}`);
    assert.deepEqual(ids, ['before'], 'the acknowledged row is lost: this is what asynchronous replication risks');
  });
});

test('synchronous replication (remote_apply): no acknowledgement without the standby, and every acknowledged commit survives promotion', { timeout: 60_000 }, async (t) => {
  await withPair(true, t, async (pair) => {
    const settings = (await pair.sql('primary', "SELECT current_setting('synchronous_commit') AS c, current_setting('synchronous_standby_names') AS n"))[0]!;
    assert.deepEqual({ c: settings['c'], n: settings['n'] }, { c: 'remote_apply', n: '*' });
    await pair.sql('primary', 'CREATE TABLE mail (id text PRIMARY KEY)');
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) {
      await pair.sql('primary', 'INSERT INTO mail VALUES ($1)', [`m${i}`]);
      acknowledged.push(`m${i}`);
      // remote_apply: readable on the standby the moment the commit returns
      assert.equal((await pair.sql('standby', 'SELECT 1 FROM mail WHERE id = $1', [`m${i}`])).length, 1, `m${i} applied on the standby when acknowledged`);
    }
    // with the standby away a commit waits: the client gets no acknowledgement (SMTP: no 250)
    await pair.stop('standby');
    let answered = false;
    const pending = pair.sql('primary', "INSERT INTO mail VALUES ('unacknowledged')").then(
      () => (answered = true),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(answered, false, 'no acknowledgement while no standby has the commit');
    await pair.stop('primary', 'immediate');
    await pending;
    assert.equal(answered, false, 'the crash ended the wait with an error, not an acknowledgement');
    await pair.start('standby');
    await pair.promote('standby');
    const ids = new Set((await pair.sql('standby', 'SELECT id FROM mail')).map((r) => r['id'] as string));
    const lost = acknowledged.filter((id) => !ids.has(id));
    console.log(`sync replication: ${acknowledged.length} acknowledged commits, ${lost.length} lost after crash + promotion; the unacknowledged one ${ids.has('unacknowledged') ? 'is' : 'is not'} there`);
    assert.deepEqual(lost, []);
    // the promoted standby has no synchronous_standby_names of its own: it accepts writes alone
    await pair.sql('standby', "INSERT INTO mail VALUES ('after')");
  });
});
