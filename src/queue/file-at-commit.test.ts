/*
 * Local recipients filed by the queue commit itself (NewQueueMessage.file): in the mailbox when the
 * commit resolves, with the same bytes, key and log line as the local agent's delivery; everything the
 * commit cannot or must not file (over quota, a success DSN asked, a paused domain, remote) is queued.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import { buildPipeline, captureLogger, inboxTexts, ManualClock, message, openTestStore, type Pipeline, type TestStore } from './testing.js';

let t: TestStore;
let p: Pipeline;
const clock = new ManualClock();
const { logger, lines } = captureLogger();

before(async () => {
  t = await openTestStore('cartero-file-');
  await t.store.directory.addDomain('example.test');
  for (const a of ['ann@example.test', 'ben@example.test', 'cy@example.test']) await provisionAccount(t.store, a, null);
  await provisionAccount(t.store, 'full@example.test', null, 10);
  await t.store.directory.addAlias({ source: 'team@example.test', targets: ['ann@example.test', 'far@remote.test'] });
  p = buildPipeline(t.store, clock, logger, { domains: ['example.test'], fileAtCommit: true });
});

after(() => t.cleanup());

const queued = async (id: string) => (await t.store.queue.get(id))?.recipients.map((r) => r.address) ?? [];

test('a message for local accounts only is in their mailboxes when the commit resolves, and in no queue entry', async () => {
  const content = message('filed');
  const { queueId } = await p.commit({ sender: 'x@sender.test', recipients: [{ address: 'ann@example.test' }, { address: 'ben+tag@example.test' }], meta: {} }, content);
  assert.equal(await t.store.queue.get(queueId), null);
  const ann = await inboxTexts(t.store, 'ann@example.test');
  const ben = await inboxTexts(t.store, 'ben@example.test');
  assert.equal(ann.at(-1), `Return-Path: <x@sender.test>\r\nDelivered-To: ann@example.test\r\n${content.toString()}`);
  // expansion took the subaddress off, as for a queued delivery
  assert.equal(ben.at(-1), `Return-Path: <x@sender.test>\r\nDelivered-To: ben@example.test\r\n${content.toString()}`);
  const sent = lines.filter((l) => l.queue_id === queueId && l.status === 'sent');
  assert.deepEqual(sent.map((l) => [l.recipient, l.relay]).sort(), [['ann@example.test', 'local'], ['ben@example.test', 'local']]);
  // the agent's key: a later delivery of the same (queue id, recipient) would find this copy
  const account = (await t.store.directory.getAccount('ann@example.test'))!;
  const inbox = (await t.store.mailboxes.get(account.id, 'INBOX'))!;
  const dup = await t.store.messages.append(inbox.id, { content, idempotencyKey: `${queueId}:ann@example.test` }, clock.now());
  assert.equal(dup.duplicate, true);
});

test('over quota, a success DSN asked, a paused domain and remote targets stay queued for the scheduler', async () => {
  const { queueId } = await p.commit(
    {
      sender: 'x@sender.test',
      recipients: [{ address: 'full@example.test' }, { address: 'cy@example.test', notify: ['SUCCESS'] }, { address: 'team@example.test' }],
      meta: {},
    },
    message('mixed', 'x'.repeat(100)),
  );
  assert.deepEqual((await queued(queueId)).sort(), ['cy@example.test', 'far@remote.test', 'full@example.test']);
  assert.equal((await inboxTexts(t.store, 'full@example.test')).length, 0);
  assert.equal((await inboxTexts(t.store, 'cy@example.test')).length, 0);
  // the alias's local target was filed, logged with the address the client gave
  assert.ok((await inboxTexts(t.store, 'ann@example.test')).at(-1)!.includes('Subject: mixed'));
  assert.ok(lines.some((l) => l.queue_id === queueId && l.recipient === 'ann@example.test' && l.orig_to === 'team@example.test' && l.status === 'sent'));

  await t.store.queue.pause('example.test', 'test', clock.now());
  const paused = await p.commit({ sender: 'x@sender.test', recipients: [{ address: 'ben@example.test' }], meta: {} }, message('paused'));
  assert.deepEqual(await queued(paused.queueId), ['ben@example.test']);
  await t.store.queue.resume('example.test', clock.now());
});

test('with duplicate suppression, an exact copy committed again (a client resending after a lost 250) is filed once, by commit or by the scheduler', async () => {
  await provisionAccount(t.store, 'dee@example.test', null);
  const d = buildPipeline(t.store, clock, logger, { domains: ['example.test'], fileAtCommit: true, duplicateWindowMs: 3_600_000 });
  const content = message('resend', 'same text');
  const env = { sender: 'x@sender.test', recipients: [{ address: 'dee@example.test' }], meta: {} };
  const before = (await inboxTexts(t.store, 'dee@example.test')).length;
  const first = await d.commit(env, content);
  const second = await d.commit(env, Buffer.from(content));
  assert.notEqual(first.queueId, second.queueId, 'two queue entries');
  assert.equal(await t.store.queue.get(second.queueId), null, 'the copy was settled at commit: nothing queued');
  assert.equal((await inboxTexts(t.store, 'dee@example.test')).length, before + 1, 'after the two commits');
  // the queue path (the scheduler's local agent) suppresses it too (other entries left queued by the tests
  // above are delivered by this round as well, to other accounts)
  const queuedOnly = buildPipeline(t.store, clock, logger, { domains: ['example.test'], duplicateWindowMs: 3_600_000 });
  const third = await queuedOnly.commit(env, Buffer.from(content));
  assert.deepEqual(await queued(third.queueId), ['dee@example.test']);
  await queuedOnly.scheduler.runOnce();
  assert.equal(await t.store.queue.get(third.queueId), null);
  assert.equal((await inboxTexts(t.store, 'dee@example.test')).length, before + 1);
  assert.ok(lines.some((l) => l.queue_id === third.queueId && /duplicate suppressed/.test(String(l.reason))));
});
