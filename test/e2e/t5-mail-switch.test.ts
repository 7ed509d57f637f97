/*
 * T5 end to end (DESIGN.md §1, issue 7): one domain, example.org; `switch` (its MX) maps each user to a
 * regional mailbox address by its user table; the regional servers east and west keep mail between
 * their own users local and send every other example.org address to the switch. Proves: routing and
 * locality on the delivered bytes; a user who moves region is a map edit + `cartero reload` (no
 * restart); a deliberate loop in the switch's table bounces exactly once, with the reason, to the
 * sender's mailbox; and with west SIGKILLed the switch queues west's mail and delivers every message
 * once after west returns and the switch is flushed. CI sends 40 messages; CARTERO_E2E_FULL=1 300.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/lab/runner.js';
import { FULL, Lab, Load, merge, printCounts, tally, until } from './lab-harness.js';

const run = promisify(execFile);
const TOTAL = FULL ? 300 : 40;
const OUTSIDE = '127.0.9.5';
const EAST_USER = '127.0.5.65'; // a workstation of the east region (east's mynetworks)
const EAST = ['alice@east.example.org', 'carol@east.example.org', 'erin@east.example.org'];
const WEST = ['bob@west.example.org', 'dan@west.example.org', 'erin@west.example.org'];
const USERS = ['alice@example.org', 'bob@example.org', 'carol@example.org', 'dan@example.org'];

function head(text: string): string {
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end);
}

describe('T5 mail switch', { timeout: 300_000 }, () => {
  let lab: Lab;
  const cartero = (...args: string[]) => run(process.execPath, [join(packageRoot(), 'bin', 'cartero.js'), ...args], { timeout: 30_000 });
  const config = (node: string) => lab.state.nodes[node]!.config;
  /** A lookup table file in a node's state directory (the copy `lab up` made; the node reads this one). */
  const table = (node: string, file: string) => join(dirname(config(node)), file);
  /** `cartero reload` on a node, waiting until it logged that its tables were re-read. */
  const reload = async (node: string) => {
    const count = () => lab.log(node).split('\n').filter((l) => l.includes('lookup tables reloaded')).length;
    const before = count();
    await cartero('reload', '-c', config(node));
    await until(`${node} to reload its tables`, () => count() > before, 10_000);
  };
  const fromEast = () => lab.sender({ bindAddress: EAST_USER, helo: 'pc1.east.example.org' });
  const viaEast = () => `smtp:[${lab.address('east')}]:2525`;

  before(async () => {
    lab = await Lab.up('t5');
  });
  after(async () => {
    await lab?.down();
  });

  test('the switch routes each user to their region; mail between users of one region stays there', async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const unknown = await outside.send({ from: 'friend@internet.test', to: ['nobody@example.org'] });
    assert.match(unknown.outcomes.get('nobody@example.org')!.reason, /550 5\.1\.1/, 'the switch refuses unknown users at RCPT');
    const inbound = await outside.send({ from: 'friend@internet.test', to: ['bob@example.org', 'carol@example.org'], subject: 't5 inbound' });
    for (const o of inbound.outcomes.values()) assert.equal(o.outcome, 'accepted', o.reason);
    const east = fromEast();
    const local = await east.send({ from: 'alice@example.org', to: ['carol@example.org'], subject: 't5 local', destination: viaEast() });
    const cross = await east.send({ from: 'alice@example.org', to: ['dan@example.org'], subject: 't5 cross', destination: viaEast() });
    assert.equal(local.outcomes.get('carol@example.org')!.outcome, 'accepted');
    assert.equal(cross.outcomes.get('dan@example.org')!.outcome, 'accepted');
    const texts: Record<string, string | null> = {};
    await until('the four copies in their regional mailboxes', async () => {
      texts['bob'] = await lab.messageText('west', 'bob@west.example.org', inbound.messageId);
      texts['carol'] = await lab.messageText('east', 'carol@east.example.org', inbound.messageId);
      texts['local'] = await lab.messageText('east', 'carol@east.example.org', local.messageId);
      texts['cross'] = await lab.messageText('west', 'dan@west.example.org', cross.messageId);
      return Object.values(texts).every((t) => t !== null);
    }, 30_000);
    assert.match(head(texts['bob']!), /by switch\.example\.org \(Cartero\)/);
    assert.match(head(texts['local']!), /by east\.example\.org \(Cartero\)/);
    assert.doesNotMatch(head(texts['local']!), /switch\.example\.org/, 'east delivered its own user without the switch');
    assert.match(head(texts['cross']!), /by west\.example\.org[\s\S]*by switch\.example\.org[\s\S]*by east\.example\.org/, 'east -> switch -> west');
    assert.match(head(texts['cross']!), /^To: dan@example\.org$/m, 'users only ever see example.org');
  });

  test('a user who moves region: one line in the switch table and `cartero reload`, no restart', async () => {
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const first = await outside.send({ from: 'friend@internet.test', to: ['erin@example.org'], subject: 't5 before the move' });
    await until('erin in east', async () => (await lab.messageText('east', 'erin@east.example.org', first.messageId)) !== null, 20_000);
    const switchPid = lab.state.nodes['switch']!.pid;

    // the move: the mailbox in west, then the switch's table (and the two regions' local lists)
    await cartero('user', 'add', 'erin@west.example.org', '--no-password', '-c', config('west'));
    const users = table('switch', 'users');
    writeFileSync(users, readFileSync(users, 'utf8').replace(/^erin@example\.org\s+erin@east\.example\.org$/m, 'erin@example.org         erin@west.example.org'));
    await reload('switch');
    const eastUsers = table('east', 'east-users');
    writeFileSync(eastUsers, readFileSync(eastUsers, 'utf8').replace(/^erin@example\.org.*\n/m, ''));
    appendFileSync(table('west', 'west-users'), 'erin@example.org         erin@west.example.org\n');
    await reload('east');
    await reload('west');
    const { stdout } = await cartero('map', 'test', 'virtual_alias_maps', 'erin@example.org', '-c', config('switch'));
    assert.match(stdout, /erin@west\.example\.org/);

    const after = await outside.send({ from: 'friend@internet.test', to: ['erin@example.org'], subject: 't5 after the move' });
    const colleague = await fromEast().send({ from: 'alice@example.org', to: ['erin@example.org'], subject: 't5 from her old region', destination: viaEast() });
    await until('both messages in erin\'s new mailbox in west', async () =>
      (await lab.messageText('west', 'erin@west.example.org', after.messageId)) !== null && (await lab.messageText('west', 'erin@west.example.org', colleague.messageId)) !== null, 20_000);
    assert.equal(await lab.messageText('east', 'erin@east.example.org', after.messageId), null, 'nothing new in the old mailbox');
    assert.equal(lab.state.nodes['switch']!.pid, switchPid, 'the switch was not restarted');
  });

  test('a loop in the switch table bounces once, with the reason, to the sender', async () => {
    const bouncedBefore = lab.bounced();
    appendFileSync(table('switch', 'users'), '# a deliberate loop\nloop-a@example.org  loop-b@example.org\nloop-b@example.org  loop-a@example.org\n');
    await reload('switch');
    const sent = await fromEast().send({ from: 'alice@example.org', to: ['loop-a@example.org'], subject: 't5 loop', destination: viaEast() });
    assert.equal(sent.outcomes.get('loop-a@example.org')!.outcome, 'accepted', 'east passes it to the switch, which has an entry for it');
    const bounces = async () => {
      const out: string[] = [];
      for (const id of (await lab.mailboxIds('east', ['alice@east.example.org'])).keys()) {
        const text = await lab.messageText('east', 'alice@east.example.org', id);
        if (text && text.includes(sent.messageId) && /^Content-Type: multipart\/report/im.test(text)) out.push(text);
      }
      return out;
    };
    await until('the bounce in alice\'s mailbox', async () => (await bounces()).length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 3000)); // a loop that went on would bounce again or keep the queues busy
    const found = await bounces();
    assert.equal(found.length, 1, 'exactly one bounce');
    assert.match(found[0]!, /mail forwarding loop \(loop-a@example\.org -> loop-b@example\.org -> loop-a@example\.org\)/);
    assert.match(found[0]!, /^Status: 5\.4\.6/m);
    assert.equal(lab.bounced() - bouncedBefore, 1, 'one bounced delivery log line in the whole lab');
    for (const n of ['switch', 'east', 'west']) assert.equal((await lab.queue(n)).active, 0, `${n} holds nothing`);
  });

  test(`${TOTAL} messages while west is down: the switch queues west's mail and delivers each once when it returns`, async () => {
    const bouncedBefore = lab.bounced();
    await lab.kill('west');
    const outside = lab.sender({ bindAddress: OUTSIDE });
    const east = fromEast();
    const load = new Load();
    // a third from east's users through east (local or via the switch), the rest from outside by MX
    await load.run(TOTAL, 4, (i) =>
      i % 3 === 0
        ? { sender: east, message: { from: 'carol@example.org', to: [USERS[i % USERS.length]!], subject: `t5 ${i}`, destination: viaEast() } }
        : { sender: outside, message: { from: `sender${i % 5}@internet.test`, to: [USERS[i % USERS.length]!], subject: `t5 ${i}` } },
    );
    assert.equal(load.accepted.size, TOTAL, `every message got 250: ${JSON.stringify([...load.reasons])}`);
    await until('the switch to hold west\'s mail', async () => (await lab.queue('switch')).active > 0, 20_000);
    const held = (await lab.queue('switch')).active;
    await lab.start('west');
    await lab.flush('switch');
    const ids = async () => merge(await lab.mailboxIds('east', EAST), await lab.mailboxIds('west', WEST));
    await until('every accepted message in its regional mailbox', async () => {
      const got = await ids();
      return [...load.accepted].every((id) => got.has(id));
    }, 90_000);
    for (const n of ['switch', 'east', 'west']) await until(`${n}'s queue to drain`, async () => (await lab.queue(n)).active === 0, 30_000);
    const counts = tally(load, await ids(), lab.bounced() - bouncedBefore);
    printCounts('T5 mail switch', counts, `west SIGKILLed before the load; the switch held ${held} queued for west`);
    assert.equal(counts.lost, 0);
    assert.equal(counts.duplicates, 0);
    assert.equal(counts.bounced, 0);
    assert.equal(counts.delivered, TOTAL);
  });
});
