/*
 * T2 end to end (DESIGN.md §1, issue 7): three null clients relay everything through `smarthost`,
 * each a `cartero serve` process of the t2-smart-host lab. Proves: an outside client gets 554 5.7.1
 * for relaying but may deliver to the smart host's own domain; an authenticated user relays on the
 * submission port; a cron-style script using `sendmail -t` on a null client reaches the mailbox with
 * the host name masqueraded away (envelope and headers); and a load through the null clients, one of
 * them SIGKILLed and restarted midway, ends with every 250 in its mailbox exactly once.
 * CI sends 60 messages; CARTERO_E2E_FULL=1 sends 300.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/lab/runner.js';
import { FULL, Lab, Load, merge, printCounts, tally, until } from './lab-harness.js';

const run = promisify(execFile);
const TOTAL = FULL ? 300 : 60;
const OUTSIDE = '127.0.9.2';
const HOSTS = ['host1', 'host2', 'host3'];
const LOCAL = ['ops@example.org', 'alice@example.org'];
const RECIPIENTS = [...LOCAL, 'bob@remote.test'];

describe('T2 smart host', { timeout: 240_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await Lab.up('t2');
  });
  after(async () => {
    await lab?.down();
  });

  test('outside clients may not relay (554 5.7.1) but may deliver to example.org; authenticated users relay', async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const smarthost = `smtp:[${lab.address('smarthost')}]:2525`;
    const denied = await outside.send({ from: 'spammer@internet.test', to: ['bob@remote.test'], destination: smarthost });
    const d = denied.outcomes.get('bob@remote.test')!;
    assert.equal(d.outcome, 'failed');
    assert.match(d.reason, /554 5\.7\.1 .*Relay access denied/);
    const inbound = await outside.send({ from: 'friend@internet.test', to: ['ops@example.org'] });
    assert.equal(inbound.outcomes.get('ops@example.org')!.outcome, 'accepted', 'the smart host is also the MX of example.org');

    const submission = `smtp:[${lab.address('smarthost')}]:2587`;
    const wrong = lab.sender({ bindAddress: OUTSIDE, auth: { username: 'alice@example.org', password: 'not-the-password' } });
    const refused = await wrong.send({ from: 'alice@example.org', to: ['bob@remote.test'], destination: submission });
    assert.notEqual(refused.outcomes.get('bob@remote.test')!.outcome, 'accepted');
    assert.match(refused.outcomes.get('bob@remote.test')!.reason, /authentication failed/i);

    const roaming = lab.sender({ bindAddress: OUTSIDE, auth: { username: 'alice@example.org', password: 'lab-secret' } });
    const relayed = await roaming.send({ from: 'alice@example.org', to: ['bob@remote.test'], destination: submission });
    assert.equal(relayed.outcomes.get('bob@remote.test')!.outcome, 'accepted', relayed.outcomes.get('bob@remote.test')!.reason);
    await until('the authenticated message to reach remote.test', async () => (await lab.mailboxIds('internet', ['bob@remote.test'])).has(relayed.messageId), 20_000);
    await until('the inbound message in ops', async () => (await lab.mailboxIds('smarthost', ['ops@example.org'])).has(inbound.messageId), 20_000);
  });

  test('a cron job on a null client: sendmail -t, relayed by the smart host, host name masqueraded', async () => {
    const reportId = `r${Date.now()}`;
    const script = join(packageRoot(), 'examples', 'topologies', 't2-smart-host', 'cron-daily-report.sh');
    await run('sh', [script], {
      timeout: 30_000,
      env: { ...process.env, CARTERO: `${process.execPath} ${join(packageRoot(), 'bin', 'cartero.js')}`, CARTERO_CONFIG: lab.state.nodes['host1']!.config, REPORT_ID: reportId },
    });
    let text: string | null = null;
    await until('the report in the ops mailbox (root@example.org is an alias of ops)', async () => {
      text = await lab.messageText('smarthost', 'ops@example.org', `X-Report-Id: ${reportId}`);
      return text !== null;
    }, 30_000);
    const head = text!.slice(0, text!.indexOf('\r\n\r\n'));
    const user = userInfo().username;
    assert.match(head, new RegExp(`^Return-Path: <${user}@example\\.org>`, 'm'), 'envelope sender masqueraded');
    assert.match(head, /^From: cron@example\.org$/m, 'header sender masqueraded');
    assert.match(head, /^Received: .*\r?\n?.*by smarthost\.example\.org/m);
    assert.match(head, /host1\.example\.org/, 'the null client is in the trace');
  });

  test(`${TOTAL} messages through the null clients while host2 is SIGKILLed and restarted`, async () => {
    const senders = HOSTS.map((h) => lab.sender({ bindAddress: lab.address(h) }));
    const load = new Load();
    let killed = false;
    let onDead = new Set<string>();
    let restarted = false;
    await load.run(
      TOTAL,
      3,
      (i) => {
        const h = i % HOSTS.length;
        return {
          sender: senders[h]!,
          message: { from: `user${i % 5}@${HOSTS[h]}.example.org`, to: [RECIPIENTS[i % RECIPIENTS.length]!], subject: `t2 ${i}`, destination: `smtp:[${lab.address(HOSTS[h]!)}]:2525` },
        };
      },
      async (done) => {
        if (!killed && done >= TOTAL / 3) {
          killed = true;
          await lab.kill('host2');
          onDead = await lab.queuedIds('host2');
        } else if (killed && !restarted && done >= (2 * TOTAL) / 3) {
          restarted = true;
          await lab.start('host2');
        }
      },
    );
    assert.ok(killed && restarted);
    assert.ok(load.accepted.size >= Math.floor(TOTAL / 2), `most messages got 250: ${JSON.stringify([...load.reasons])}`);
    for (const h of HOSTS) await lab.flush(h);
    const ids = async () => merge(await lab.mailboxIds('smarthost', LOCAL), await lab.mailboxIds('internet', ['bob@remote.test']));
    await until('every accepted message in its mailbox', async () => {
      const got = await ids();
      return [...load.accepted].every((id) => got.has(id));
    }, 90_000);
    for (const n of [...HOSTS, 'smarthost']) await until(`${n}'s queue to drain`, async () => (await lab.queue(n)).active === 0, 30_000);
    const counts = tally(load, await ids(), lab.bounced());
    printCounts('T2 smart host', counts, `host2 SIGKILLed after a third of the load holding ${onDead.size} queued, restarted after two thirds; resends recognised by the next hop ${lab.resent()}`);
    // A null client killed after the smart host's 250 but before its own queue update sends that message
    // again after the restart; the smart host recognises the resend by its XQUEUEID and bytes
    // (docs/xqueueid.md) and queues nothing: no duplicate at all.
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0, `duplicated: ${counts.duplicateIds.join(' ')} (in host2's queue at the kill: ${counts.duplicateIds.filter((id) => onDead.has(id)).length})`);
    assert.equal(counts.bounced, 0);
  });
});
