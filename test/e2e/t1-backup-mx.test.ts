/*
 * T1 end to end (DESIGN.md §1, issue 7): primary mx1 (MX 10), backup mx2 (MX 20), partner (MX 30),
 * each a `cartero serve` process of the t1-backup-mx lab. An outside sender that follows the MX rules
 * through the lab DNS sends while mx1 is SIGKILLed (mx2 takes the mail) and then mx2 too (the partner
 * takes it); mx1 and mx2 come back, the backups are flushed (our ETRN) and every message that got 250
 * must be in its mailbox on mx1 exactly once, with nothing bounced. The backups refuse recipients mx1
 * would refuse. CI sends 50 messages; CARTERO_E2E_FULL=1 sends 200. Before that, mx1 is put in
 * maintenance (`lab fault mx1 smtp-tempfail`: 451 at MAIL): senders fall back to mx2, which keeps the
 * mail until mx1 answers again (`smtp-ok`); CI 20 messages, full 100.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FULL, Lab, Load, merge, printCounts, tally, until } from './lab-harness.js';

const TOTAL = FULL ? 200 : 50;
const MAINTENANCE = FULL ? 100 : 20;
const USERS = ['alice@example.org', 'bob@example.org', 'carol@example.org'];
const RECIPIENTS = [...USERS, 'postmaster@example.org']; // postmaster is an alias of alice
const OUTSIDE = '127.0.9.1';

describe('T1 backup MX', { timeout: 240_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await Lab.up('t1');
  });
  after(async () => {
    await lab?.down();
  });

  test('the backups refuse the recipients the primary would refuse, and relay nothing else', async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    for (const node of ['mx2', 'partner']) {
      const destination = `smtp:[${lab.address(node)}]:2525`;
      const unknown = await outside.send({ from: 'someone@internet.test', to: ['nobody@example.org'], destination });
      const u = unknown.outcomes.get('nobody@example.org')!;
      assert.equal(u.outcome, 'failed', `${node}: ${u.reason}`);
      assert.match(u.reason, /550 5\.1\.1/);
      const relay = await outside.send({ from: 'someone@internet.test', to: ['victim@elsewhere.test'], destination });
      assert.match(relay.outcomes.get('victim@elsewhere.test')!.reason, /554 5\.7\.1/, `${node} is no open relay`);
    }
    const known = await outside.send({ from: 'someone@internet.test', to: ['bob@example.org'], destination: `smtp:[${lab.address('mx2')}]:2525` });
    assert.equal(known.outcomes.get('bob@example.org')!.outcome, 'accepted');
    await until('the backup to pass the known recipient on to mx1', async () => ((await lab.mailboxIds('mx1', ['bob@example.org'])).get(known.messageId) ?? 0) === 1, 20_000);
  });

  test(`primary in maintenance (SMTP 451 at MAIL): ${MAINTENANCE} messages go to the backup, which hands them over once it ends`, async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const load = new Load();
    await lab.smtpTempfail('mx1', 'mail');
    await load.run(MAINTENANCE, 4, (i) => ({
      sender: outside,
      message: { from: `maint${i % 5}@internet.test`, to: [USERS[i % USERS.length]!], subject: `t1 maintenance ${i}`, headers: [`X-Lab-Seq: ${i}`] },
    }));
    const viaMx2 = [...load.relays].filter(([r]) => r.startsWith('mx2.example.org')).reduce((n, [, c]) => n + c, 0);
    assert.equal(viaMx2, MAINTENANCE, `mx1 answering 451 sends every sender to the MX 20: ${JSON.stringify([...load.relays])}`);
    assert.equal(load.accepted.size, MAINTENANCE, `every message got 250: ${JSON.stringify([...load.reasons])}`);
    // mx2 tries mx1 meanwhile and is told 451 too: nothing reaches a mailbox while the maintenance lasts
    await new Promise((r) => setTimeout(r, 3000));
    const during = await lab.mailboxIds('mx1', USERS);
    assert.equal([...load.accepted].filter((id) => during.has(id)).length, 0, 'mx1 took nothing during its maintenance');
    assert.ok(lab.log('mx2').includes('4.3.2 Service temporarily unavailable (cartero lab fault smtp-tempfail)'), 'mx2 saw the 451');
    const queued = (await lab.queue('mx2')).active;

    await lab.smtpTempfail('mx1', null);
    await lab.flush('mx2');
    await until('mx2 to hand everything to mx1', async () => {
      if ((await lab.queue('mx2')).active !== 0) return false;
      const ids = await lab.mailboxIds('mx1', USERS);
      return [...load.accepted].every((id) => ids.has(id));
    }, 60_000);
    const counts = tally(load, await lab.mailboxIds('mx1', USERS), lab.bounced());
    printCounts('T1 primary in maintenance', counts, `queued on mx2 during it ${queued}`);
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0);
    assert.equal(counts.bounced, 0);
    assert.equal(counts.delivered, MAINTENANCE);
  });

  test(`primary down, then backup down: ${TOTAL} messages by MX, each delivered once when they return`, async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const load = new Load();
    const message = (i: number) => ({
      sender: outside,
      message: { from: `sender${i % 7}@internet.test`, to: [RECIPIENTS[i % RECIPIENTS.length]!], subject: `t1 ${i}`, headers: [`X-Lab-Seq: ${i}`] },
    });
    await lab.kill('mx1');
    const half = Math.floor(TOTAL / 2);
    await load.run(half, 4, message);
    const viaMx2 = [...load.relays].filter(([r]) => r.startsWith('mx2.example.org')).reduce((n, [, c]) => n + c, 0);
    assert.equal(viaMx2, half, `with mx1 down the MX 20 takes everything: ${JSON.stringify([...load.relays])}`);

    await lab.kill('mx2');
    await load.run(TOTAL - half, 4, (i) => message(i + half));
    const viaPartner = [...load.relays].filter(([r]) => r.startsWith('mx.partner.net')).reduce((n, [, c]) => n + c, 0);
    assert.equal(viaPartner, TOTAL - half, `with mx1 and mx2 down the partner's MX 30 takes everything: ${JSON.stringify([...load.relays])}`);
    assert.equal(load.accepted.size, TOTAL, `every message got 250: ${JSON.stringify([...load.reasons])}`);
    const queued = { mx2: (await lab.queue('mx2')).active, partner: (await lab.queue('partner')).active };
    assert.equal(queued.mx2 + queued.partner, TOTAL, 'the backups hold everything while mx1 is down');

    await lab.start('mx1');
    await lab.start('mx2');
    await lab.flush('mx2');
    await lab.flush('partner');
    const backupsEmpty = async () => (await lab.queue('mx2')).active === 0 && (await lab.queue('partner')).active === 0;
    // the backups' SMTP client suspends a destination that did not answer for 60 s (Postfix's dead host)
    await until('the backups to hand everything to mx1', async () => {
      if (!(await backupsEmpty())) return false;
      const ids = await lab.mailboxIds('mx1', USERS);
      return [...load.accepted].every((id) => ids.has(id));
    }, 150_000);
    const counts = tally(load, merge(await lab.mailboxIds('mx1', USERS)), lab.bounced());
    printCounts('T1 backup MX', counts, `queued on mx2 ${queued.mx2}, on partner ${queued.partner}`);
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0);
    assert.equal(counts.bounced, 0);
    assert.equal(counts.delivered, TOTAL);
  });
});
