import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import type { EnvelopeRecipient } from '../smtp/services.js';
import type { QueueEntry } from '../store/index.js';
import { buildPipeline, captureLogger, inboxTexts, ManualClock, message, openTestStore, type Pipeline, type TestStore } from './testing.js';

let t: TestStore;
let p: Pipeline;
const clock = new ManualClock();
const { logger, lines } = captureLogger();

before(async () => {
  t = await openTestStore();
  const { store } = t;
  for (const d of ['example.test', 'other.test', 'catch.test']) await store.directory.addDomain(d);
  for (const a of ['bob@example.test', 'carol@example.test', 'erin@other.test', 'dave@catch.test']) await provisionAccount(store, a, null);
  const aliases: [string, string[]][] = [
    ['list@example.test', ['bob@example.test', 'Carol@Example.test', 'ext@remote.test', 'Ext2@Remote.Test']],
    ['nested@example.test', ['list@example.test', 'carol+x@example.test', 'erin@other.test']],
    ['loop-a@example.test', ['loop-b@example.test', 'bob@example.test']],
    ['loop-b@example.test', ['loop-a@example.test']],
    ['self@example.test', ['self@example.test', 'carol@example.test']],
    ['ghost@example.test', ['nobody@example.test']],
    ['bad@example.test', ['not-an-address']],
    ['four@example.test', ['a@remote.test', 'b@remote.test', 'c@remote.test', 'd@remote.test']],
    ['@catch.test', ['dave@catch.test']],
  ];
  for (let i = 0; i < 12; i++) aliases.push([`d${i}@example.test`, [`d${i + 1}@example.test`]]);
  aliases.push(['d12@example.test', ['bob@example.test']]);
  for (const [source, targets] of aliases) await store.directory.addAlias({ source, targets });
  p = buildPipeline(store, clock, logger, { domains: ['example.test'], relayDomains: ['relay.test'] });
});

after(() => t.cleanup());

async function commit(recipients: (string | EnvelopeRecipient)[], sender = 'alice@sender.test'): Promise<QueueEntry> {
  const rcpts = recipients.map((r) => (typeof r === 'string' ? { address: r } : r));
  const { queueId } = await p.commit({ sender, recipients: rcpts, meta: { client: '192.0.2.1' } }, message(`m${clock.now()}`));
  clock.advance(1);
  const entry = await t.store.queue.get(queueId);
  assert.ok(entry);
  return entry;
}

const addresses = (e: QueueEntry) => e.recipients.map((r) => r.address);
const undeliverable = (e: QueueEntry) => e.meta.undeliverable as Record<string, string> | undefined;

describe('alias expansion at commit', () => {
  test('one alias to several local and remote addresses, ORCPT keeps the alias', async () => {
    const e = await commit(['list@example.test']);
    assert.deepEqual(addresses(e), ['bob@example.test', 'carol@example.test', 'ext@remote.test', 'Ext2@Remote.Test']);
    assert.ok(e.recipients.every((r) => r.orcpt === 'rfc822;list@example.test'));
    assert.deepEqual(e.meta.expanded, { 'list@example.test': addresses(e) });
    assert.equal(e.meta.client, '192.0.2.1');
  });

  test('recursive expansion across domains, deduplicated, client ORCPT and NOTIFY kept', async () => {
    const e = await commit([
      { address: 'nested@example.test', orcpt: 'rfc822;team@old.test', notify: ['FAILURE'] },
      'bob@example.test',
      'carol+y@example.test',
    ]);
    assert.deepEqual(addresses(e), ['bob@example.test', 'carol@example.test', 'ext@remote.test', 'Ext2@Remote.Test', 'erin@other.test']);
    assert.ok(e.recipients.every((r) => r.orcpt === 'rfc822;team@old.test' && r.notify?.join() === 'FAILURE'));
    assert.equal(undeliverable(e), undefined);
  });

  test('subaddress goes to the account, the original address becomes ORCPT', async () => {
    const e = await commit(['bob+lists@example.test', { address: 'carol+a@example.test', orcpt: 'rfc822;carol+a@example.test' }]);
    assert.deepEqual(
      e.recipients.map((r) => [r.address, r.orcpt]),
      [
        ['bob@example.test', 'rfc822;bob+lists@example.test'],
        ['carol@example.test', 'rfc822;carol+a@example.test'],
      ],
    );
    const plain = await commit(['bob@example.test']);
    assert.equal(plain.recipients[0]?.orcpt, null);
    assert.equal(plain.meta.expanded, undefined);
  });

  test('catch-all alias of a directory domain', async () => {
    const e = await commit(['whoever@catch.test', 'dave+x@catch.test']);
    assert.deepEqual(addresses(e), ['dave@catch.test']);
  });

  test('remote and relay recipients pass unchanged', async () => {
    const e = await commit(['X@Remote.test', 'y@relay.test', 'bob@example.test.']);
    assert.deepEqual(addresses(e), ['X@Remote.test', 'y@relay.test', 'bob@example.test.']);
    assert.ok(e.recipients.every((r) => r.orcpt === null));
  });

  test('a loop fails only the looping address; the rest is delivered', async () => {
    const e = await commit(['loop-a@example.test']);
    assert.deepEqual(addresses(e), ['loop-a@example.test', 'bob@example.test']);
    assert.match(undeliverable(e)?.['loop-a@example.test'] ?? '', /^554 5\.4\.6 .*mail forwarding loop \(loop-a@example\.test -> loop-b@example\.test -> loop-a@example\.test\)/);
    const self = await commit(['self@example.test']);
    assert.deepEqual(addresses(self), ['self@example.test', 'carol@example.test']);
    assert.match(undeliverable(self)?.['self@example.test'] ?? '', /loop/);

    await p.scheduler.runOnce();
    assert.equal(await t.store.queue.get(e.id), null, 'entry finished: one done, one failed');
    const line = lines.find((l) => l.queue_id === e.id && l.recipient === 'loop-a@example.test');
    assert.equal(line?.status, 'bounced');
    assert.match(String(line?.reason), /mail forwarding loop/);
    assert.ok(lines.some((l) => l.queue_id === e.id && l.recipient === 'bob@example.test' && l.status === 'sent'));
  });

  test('depth limit, unknown target, bad target, expansion limit', async () => {
    const deep = await commit(['d0@example.test']);
    assert.deepEqual(addresses(deep), ['d10@example.test']);
    assert.match(undeliverable(deep)?.['d10@example.test'] ?? '', /deeper than 10 levels/);
    const ghost = await commit(['ghost@example.test']);
    assert.match(undeliverable(ghost)?.['nobody@example.test'] ?? '', /^550 5\.1\.1 /);
    const bad = await commit(['bad@example.test', 'bob@example.test']);
    assert.match(undeliverable(bad)?.['not-an-address'] ?? '', /^553 5\.1\.3 /);
    const limited = buildPipeline(t.store, clock, logger, { domains: ['example.test'], expansionLimit: 3 });
    const { queueId } = await limited.commit({ sender: '', recipients: [{ address: 'four@example.test' }], meta: {} }, message('limit'));
    const e = await t.store.queue.get(queueId);
    assert.deepEqual(e && addresses(e), ['four@example.test']);
    assert.match((e && undeliverable(e)?.['four@example.test']) ?? '', /more than 3 addresses/);
  });

  test('an account removed after RCPT is committed and fails at delivery with 550 5.1.1', async () => {
    await provisionAccount(t.store, 'gone@example.test', null);
    const e = await commit(['gone@example.test', 'bob@example.test']);
    await t.store.directory.removeAccount('gone@example.test');
    await p.scheduler.runOnce();
    const line = lines.find((l) => l.queue_id === e.id && l.recipient === 'gone@example.test');
    assert.equal(line?.status, 'bounced');
    assert.match(String(line?.reason), /^550 5\.1\.1 /);
  });

  test('one log line per committed message', async () => {
    const e = await commit(['list@example.test'], 'alice@sender.test');
    const line = lines.find((l) => l.queue_id === e.id && 'nrcpt' in l);
    assert.ok(line);
    assert.equal(line.sender, 'alice@sender.test');
    assert.equal(line.nrcpt, 4);
    assert.equal(line.client, '192.0.2.1');
    assert.equal(line.size, e.size);
    assert.equal(line.msg, `${e.id}: from=<alice@sender.test>, size=${String(line.size)}, nrcpt=4 (queue active)`);
  });

  test('the delivered copy of an expanded alias lands once per final mailbox', async () => {
    await p.scheduler.runOnce(); // earlier tests' entries
    const before = (await inboxTexts(t.store, 'carol@example.test')).length;
    await commit(['nested@example.test', 'list@example.test', 'carol@example.test']);
    await p.scheduler.runOnce();
    assert.equal((await inboxTexts(t.store, 'carol@example.test')).length, before + 1);
  });
});
