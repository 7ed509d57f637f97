import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { digestPruneJob } from '../cluster/jobs.js';
import { provisionAccount } from '../directory/accounts.js';
import type { DeliveryJob } from '../queue/agent.js';
import { inboxTexts, ManualClock, message, openTestStore, type TestStore } from '../queue/testing.js';
import { deserializeStructure, imapEnvelope, sectionBytes } from '../mime/index.js';
import { createLocalAgent, deliveryHeaders } from './local.js';

let t: TestStore;
const clock = new ManualClock();

before(async () => {
  t = await openTestStore();
  await t.store.directory.addDomain('example.test');
  await provisionAccount(t.store, 'bob@example.test', null);
  await provisionAccount(t.store, 'small@example.test', null, 50);
  // an account made without provisionAccount has no INBOX yet
  await t.store.directory.addAccount({ address: 'bare@example.test', passwordHash: null });
});

after(() => t.cleanup());

const job = (recipient: string, o: Partial<DeliveryJob> = {}): DeliveryJob => ({
  queueId: 'Q1',
  sender: 'alice@sender.test',
  recipient,
  content: message('local'),
  now: clock.now(),
  ...o,
});

test('files the message into INBOX with Return-Path and Delivered-To on top, bytes unchanged below', async () => {
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  assert.equal(agent.relay, 'local');
  assert.deepEqual(await agent.deliver(job('bob@example.test')), { outcome: 'done', reason: 'delivered to mailbox' });
  const [stored] = await inboxTexts(t.store, 'bob@example.test');
  assert.equal(stored, `Return-Path: <alice@sender.test>\r\nDelivered-To: bob@example.test\r\n${message('local').toString()}`);
});

test('with the queue blob at hand, every mailbox shares its bytes under its own trace headers', async () => {
  await provisionAccount(t.store, 'dave@example.test', null);
  await provisionAccount(t.store, 'erin@example.test', null);
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  const content = message('shared');
  const queued = await t.store.queue.commit({ sender: 'alice@sender.test', recipients: [{ address: 'dave@example.test' }, { address: 'erin@example.test' }], content }, clock.now());
  for (const rcpt of ['dave@example.test', 'erin@example.test']) {
    const r = await agent.deliver(job(rcpt, { queueId: queued.id, content, blobId: queued.blobId }));
    assert.equal(r.outcome, 'done');
    const account = await t.store.directory.getAccount(rcpt);
    const inbox = (await t.store.mailboxes.get(account!.id, 'INBOX'))!;
    const [meta] = await t.store.messages.list(inbox.id);
    const stored = await t.store.messages.content(inbox.id, meta!.uid);
    assert.equal(stored.toString(), `Return-Path: <alice@sender.test>\r\nDelivered-To: ${rcpt}\r\n${content.toString()}`);
    assert.equal(meta!.blobId, queued.blobId, 'the queued bytes, not a copy');
    assert.equal(meta!.size, stored.length, 'the size counts the trace headers');
    assert.equal((await t.store.mailboxes.get(account!.id, 'INBOX'))!.size, stored.length);
  }
  assert.equal(await t.store.blobs.refs(queued.blobId), 3, 'the queue entry and two mailboxes');
  const full = await agent.deliver(job('small@example.test', { queueId: queued.id, content, blobId: queued.blobId }));
  assert.equal(full.outcome, 'deferred', 'the quota counts the shared bytes too');
});

test('a delivered message carries its MIME structure, with offsets that count the trace headers', async () => {
  await provisionAccount(t.store, 'carol@example.test', null);
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  const content = Buffer.from(
    'From: a@sender.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n--b--\r\n',
  );
  assert.equal((await agent.deliver(job('carol@example.test', { queueId: 'QS', content }))).outcome, 'done');
  const account = await t.store.directory.getAccount('carol@example.test');
  const inbox = await t.store.mailboxes.get(account!.id, 'INBOX');
  const [row] = await t.store.messages.structures(inbox!.id);
  assert.ok(row?.structure, 'structure stored');
  const s = deserializeStructure(row.structure);
  const stored = await t.store.messages.content(inbox!.id, row.uid);
  assert.equal(s.root.end, stored.length);
  assert.equal(sectionBytes(stored, s, { part: [2], kind: 'all' })?.toString(), '<b>two</b>');
  assert.equal(sectionBytes(stored, s, { part: [], kind: 'header.fields', fields: ['delivered-to'] })?.toString(), 'Delivered-To: carol@example.test\r\n\r\n');
  assert.match(imapEnvelope(s), /^\(NIL "parts" \(\(NIL NIL "a" "sender.test"\)\)/);
});

test('the same (queue id, recipient) is stored once; another queue id is a new message', async () => {
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  const before = (await inboxTexts(t.store, 'bob@example.test')).length;
  const again = await agent.deliver(job('bob@example.test'));
  assert.equal(again.outcome, 'done');
  assert.match(again.reason, /duplicate suppressed/);
  assert.equal((await inboxTexts(t.store, 'bob@example.test')).length, before);
  await agent.deliver(job('bob@example.test', { queueId: 'Q2' }));
  assert.equal((await inboxTexts(t.store, 'bob@example.test')).length, before + 1);
});

test('with a duplicate suppression window, an exact copy under another queue id is not filed again; another body is', async () => {
  await provisionAccount(t.store, 'dup@example.test', null);
  const agent = createLocalAgent({ store: t.store, delimiters: '+', duplicateWindowMs: 60_000 });
  const resent = message('resent', 'the same text');
  const first = await agent.deliver(job('dup@example.test', { queueId: 'D1', content: resent }));
  assert.equal(first.reason, 'delivered to mailbox');
  const again = await agent.deliver(job('dup@example.test', { queueId: 'D2', content: Buffer.from(resent) }));
  assert.equal(again.outcome, 'done');
  assert.match(again.reason, /exact copy was delivered lately: duplicate suppressed/);
  // the same Message-ID with other text is another message
  await agent.deliver(job('dup@example.test', { queueId: 'D3', content: message('resent', 'new text') }));
  assert.equal((await inboxTexts(t.store, 'dup@example.test')).length, 2);
  // without a window (the default) every copy is filed
  await createLocalAgent({ store: t.store, delimiters: '+' }).deliver(job('dup@example.test', { queueId: 'D4', content: resent }));
  assert.equal((await inboxTexts(t.store, 'dup@example.test')).length, 3);
  // filing at commit carries the digest to the store
  const filed = await agent.fileAtCommit('dup@example.test', 'a@sender.test', resent, clock.now());
  assert.equal(filed?.deliveryDigest?.since, clock.now() - 60_000);
});

test('the digest-prune singleton job forgets digests past the window, and a copy is then filed again', async () => {
  await provisionAccount(t.store, 'prune@example.test', null);
  const agent = createLocalAgent({ store: t.store, delimiters: '+', duplicateWindowMs: 60_000 });
  const content = message('pruned', 'text');
  await agent.deliver(job('prune@example.test', { queueId: 'P1', content }));
  const job60 = digestPruneJob(t.store, { windowMs: 60_000 });
  assert.equal(job60.name, 'digest-prune');
  assert.equal(await job60.run(clock.now() + 30_000), null, 'within the window: kept');
  assert.match(String(await job60.run(clock.now() + 120_000)), /^\d+ delivery digests older than 60 s removed$/);
  await agent.deliver(job('prune@example.test', { queueId: 'P2', content }));
  assert.equal((await inboxTexts(t.store, 'prune@example.test')).length, 2);
});

test('null sender, subaddressed recipient, missing INBOX created', async () => {
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  assert.equal((await agent.deliver(job('bare+tag@example.test', { sender: '' }))).outcome, 'done');
  const [stored] = await inboxTexts(t.store, 'bare@example.test');
  assert.ok(stored?.startsWith('Return-Path: <>\r\nDelivered-To: bare+tag@example.test\r\nFrom: '));
});

test('unknown user fails 550 5.1.1; over quota defers 452 4.2.2', async () => {
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  const unknown = await agent.deliver(job('nobody@example.test'));
  assert.deepEqual(unknown, { outcome: 'failed', reason: '550 5.1.1 <nobody@example.test>: user unknown in virtual mailbox table' });
  assert.equal((await agent.deliver(job('x%y@example.test'))).outcome, 'failed');
  const full = await agent.deliver(job('small@example.test'));
  assert.deepEqual(full, { outcome: 'deferred', reason: '452 4.2.2 <small@example.test>: Mailbox full' });
  assert.deepEqual(await inboxTexts(t.store, 'small@example.test'), []);
});

test('header values cannot carry a line break', () => {
  const out = deliveryHeaders('a@b\r\nBcc: evil@x', 'c@d\n').toString();
  assert.equal(out, 'Return-Path: <a@bBcc: evil@x>\r\nDelivered-To: c@d\r\n');
});

test('an unavailable store defers instead of throwing', async () => {
  const other = await openTestStore();
  await other.store.close();
  const agent = createLocalAgent({ store: other.store, delimiters: '+' });
  const result = await agent.deliver(job('bob@example.test'));
  assert.equal(result.outcome, 'deferred');
  assert.match(result.reason, /^451 4\.3\.0 /);
  await other.cleanup().catch(() => undefined); // closing twice may throw; the directory is removed anyway
});

test('an account removed right after a delivery: the next one within the second is deferred, later ones fail 5.1.1', async () => {
  await provisionAccount(t.store, 'leaving@example.test', null);
  const agent = createLocalAgent({ store: t.store, delimiters: '+' });
  assert.equal((await agent.deliver(job('leaving@example.test', { queueId: 'L1' }))).outcome, 'done');
  await t.store.directory.removeAccount('leaving@example.test');
  // its INBOX id is still remembered: the append finds no mailbox and the delivery waits, nothing misfiled
  const soon = await agent.deliver(job('leaving@example.test', { queueId: 'L2' }));
  assert.equal(soon.outcome, 'deferred');
  assert.match(soon.reason, /^451 4\.3\.0 mailbox vanished/);
  assert.deepEqual(await agent.deliver(job('leaving@example.test', { queueId: 'L3' })), {
    outcome: 'failed',
    reason: '550 5.1.1 <leaving@example.test>: user unknown in virtual mailbox table',
  });
});
