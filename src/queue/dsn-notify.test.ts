import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import type { QueueEntry } from '../store/index.js';
import type { BackoffSettings } from './backoff.js';
import { createDsnNotifier, delayWarningDue, isOwnNotice, noticeBackoff, wantsNotice, type DsnNotifier, type NoticeResult } from './dsn-notify.js';
import { QueueScheduler } from './scheduler.js';
import { createLocalAgent } from '../delivery/local.js';
import { buildPipeline, captureLogger, inboxTexts, ManualClock, message, openTestStore, type LogRecord, type Pipeline, type TestStore } from './testing.js';

const S = 1000;
const H = 3600 * S;
const BACKOFF: BackoffSettings = { minimalMs: 300 * S, maximalMs: 4000 * S, lifetimeMs: 5 * 24 * H };

describe('wantsNotice (RFC 3461 §4.1)', () => {
  test('NOTIFY absent: failure and delay, not success; NEVER: nothing; a list: what it names', () => {
    assert.deepEqual([wantsNotice(null, 'failure'), wantsNotice(null, 'delay'), wantsNotice(null, 'success')], [true, true, false]);
    assert.deepEqual([wantsNotice(['NEVER'], 'failure'), wantsNotice(['NEVER'], 'delay'), wantsNotice(['NEVER'], 'success')], [false, false, false]);
    assert.deepEqual([wantsNotice(['SUCCESS'], 'failure'), wantsNotice(['SUCCESS'], 'success')], [false, true]);
    assert.deepEqual([wantsNotice(['FAILURE', 'DELAY'], 'delay'), wantsNotice(['failure'], 'failure')], [true, true]);
  });
});

describe('delayWarningDue', () => {
  test('exactly one scheduled attempt falls in the warning window', () => {
    const t0 = 0;
    const delay = 4 * H;
    let now = t0;
    let due = 0;
    for (let i = 0; i < 200 && now - t0 < BACKOFF.lifetimeMs; i++) {
      if (delayWarningDue(t0, now, delay, BACKOFF)) due++;
      const age = now - t0;
      now += Math.min(Math.max(age, BACKOFF.minimalMs), BACKOFF.maximalMs);
    }
    assert.equal(due, 1);
    assert.equal(delayWarningDue(t0, t0 + 5 * H, 0, BACKOFF), false);
  });
});

describe('DSN notifier with the real commit path', () => {
  let t: TestStore;
  let clock: ManualClock;
  let p: Pipeline;
  let lines: LogRecord[];
  let notifier: DsnNotifier;

  beforeEach(async () => {
    t = await openTestStore();
    await t.store.directory.addDomain('example.test');
    await provisionAccount(t.store, 'alice@example.test', null);
    await provisionAccount(t.store, 'bob@example.test', null);
    clock = new ManualClock();
    const cap = captureLogger();
    lines = cap.lines;
    p = buildPipeline(t.store, clock, cap.logger, { domains: ['example.test'] });
    notifier = createDsnNotifier({ commit: p.commit, logger: cap.logger, hostname: 'mx.example.test', backoff: BACKOFF, delayWarningMs: 4 * H });
  });
  afterEach(() => t.cleanup());

  async function queued(sender: string, rcpts: { address: string; notify?: string[] }[], meta: Record<string, unknown> = {}): Promise<QueueEntry> {
    const { queueId } = await p.commit({ sender, recipients: rcpts, meta }, message('dsn-test'));
    const entry = await t.store.queue.get(queueId);
    assert.ok(entry);
    return entry;
  }

  const idOf = (e: QueueEntry, address: string): number => {
    const r = e.recipients.find((x) => x.address === address);
    assert.ok(r, address);
    return r.id;
  };

  test('a failed recipient: the report is queued to the sender and delivered into her INBOX', async () => {
    const e = await queued('alice@example.test', [{ address: 'nobody@remote.test' }], { ret: 'FULL', envid: 'E1' });
    const results: NoticeResult[] = [{ recipientId: idOf(e, 'nobody@remote.test'), outcome: 'failed', reason: 'host mx.remote.test[192.0.2.1] said: 550 5.1.1 unknown' }];
    const ids = await notifier.notify(e, results, () => t.store.queue.content(e.id), clock.now());
    assert.equal(ids.length, 1);
    const dsnEntry = await t.store.queue.get(ids[0]!);
    assert.equal(dsnEntry?.sender, '');
    assert.deepEqual(dsnEntry?.recipients.map((r) => [r.address, r.notify]), [['alice@example.test', ['NEVER']]]);
    assert.equal(dsnEntry?.meta.dsn, 'failure');
    assert.equal(dsnEntry?.meta.original_queue_id, e.id);
    assert.ok(lines.some((l) => l.msg === `${e.id}: sender non-delivery notification: ${ids[0]}`));
    await p.scheduler.runOnce();
    const inbox = await inboxTexts(t.store, 'alice@example.test');
    assert.equal(inbox.length, 1);
    assert.match(inbox[0]!, /^Return-Path: <>\r\n/);
    assert.match(inbox[0]!, /Subject: Undelivered Mail Returned to Sender/);
    assert.match(inbox[0]!, /Original-Envelope-Id: E1\r\n/);
    assert.match(inbox[0]!, /Content-Type: message\/rfc822\r\n[\s\S]*Subject: dsn-test/);
    assert.equal(await t.store.queue.get(ids[0]!), null);
  });

  test('NOTIFY=NEVER and a null sender get no report, only a log line', async () => {
    const e = await queued('alice@example.test', [{ address: 'x@remote.test', notify: ['NEVER'] }]);
    assert.deepEqual(await notifier.notify(e, [{ recipientId: idOf(e, 'x@remote.test'), outcome: 'failed', reason: '550 5.1.1 no' }], () => t.store.queue.content(e.id), clock.now()), []);
    assert.ok(lines.some((l) => /NOTIFY=NEVER/.test(String(l.msg))));
    const bounce = await queued('', [{ address: 'y@remote.test' }]);
    assert.deepEqual(await notifier.notify(bounce, [{ recipientId: idOf(bounce, 'y@remote.test'), outcome: 'failed', reason: '550 5.1.1 no' }], () => t.store.queue.content(bounce.id), clock.now()), []);
    assert.ok(lines.some((l) => /never bounce a bounce/.test(String(l.msg))));
    assert.equal((await t.store.queue.list()).length, 2);
  });

  test('success only for NOTIFY=SUCCESS, and not when a DSN-capable next hop took it over', async () => {
    const e = await queued('alice@example.test', [{ address: 'bob@example.test', notify: ['SUCCESS'] }, { address: 'carol@remote.test', notify: ['SUCCESS'] }, { address: 'dan@remote.test' }]);
    const results: NoticeResult[] = [
      { recipientId: idOf(e, 'bob@example.test'), outcome: 'done', reason: 'delivered to mailbox' },
      { recipientId: idOf(e, 'carol@remote.test'), outcome: 'done', handoff: 'dsn-peer', reason: '250 ok' },
      { recipientId: idOf(e, 'dan@remote.test'), outcome: 'done', handoff: 'relayed', reason: '250 ok' },
    ];
    const ids = await notifier.notify(e, results, () => t.store.queue.content(e.id), clock.now());
    assert.equal(ids.length, 1);
    const text = (await t.store.queue.content(ids[0]!)).toString();
    assert.match(text, /Subject: Successful Mail Delivery Report/);
    assert.match(text, /Final-Recipient: rfc822; bob@example\.test\r\nAction: delivered\r\nStatus: 2\.0\.0/);
    assert.doesNotMatch(text, /carol|dan@/);
  });

  test('delay warning: once, in the window after delay_warning_time', async () => {
    const e = await queued('alice@example.test', [{ address: 'slow@remote.test' }]);
    const res: NoticeResult[] = [{ recipientId: idOf(e, 'slow@remote.test'), outcome: 'deferred', reason: '451 4.4.1 connection refused' }];
    assert.deepEqual(await notifier.notify(e, res, () => t.store.queue.content(e.id), e.receivedAt + 3 * H), []);
    const ids = await notifier.notify(e, res, () => t.store.queue.content(e.id), e.receivedAt + 4 * H + 60 * S);
    assert.equal(ids.length, 1);
    const text = (await t.store.queue.content(ids[0]!)).toString();
    assert.match(text, /Action: delayed\r\nStatus: 4\.4\.1/);
    assert.match(text, /Will-Retry-Until: /);
    assert.deepEqual(await notifier.notify(e, res, () => t.store.queue.content(e.id), e.receivedAt + 6 * H), []);
  });

  test('the original cannot be read: the report still goes, without the third part', async () => {
    const e = await queued('alice@example.test', [{ address: 'z@remote.test' }]);
    const ids = await notifier.notify(e, [{ recipientId: idOf(e, 'z@remote.test'), outcome: 'failed', reason: '550 5.1.1 no' }], () => Promise.reject(new Error('gone')), clock.now());
    assert.equal(ids.length, 1);
    const text = (await t.store.queue.content(ids[0]!)).toString();
    assert.doesNotMatch(text, /rfc822-headers|message\/rfc822/);
    assert.ok(lines.some((l) => /original message unreadable/.test(String(l.msg))));
  });

  test('double bounce: our undeliverable notice goes to the postmaster once, never further', async () => {
    await provisionAccount(t.store, 'postmaster@example.test', null);
    const cap = captureLogger();
    const n = createDsnNotifier({ commit: p.commit, logger: cap.logger, hostname: 'mx.example.test', backoff: BACKOFF, doubleBounceRecipient: 'postmaster@example.test' });
    const e = await queued('someone@remote.test', [{ address: 'x@remote.test' }]);
    const [noticeId] = await n.notify(e, [{ recipientId: idOf(e, 'x@remote.test'), outcome: 'failed', reason: '550 5.1.1 no' }], () => t.store.queue.content(e.id), clock.now());
    const notice = await t.store.queue.get(noticeId!);
    assert.ok(notice && isOwnNotice(notice));
    // the notice itself cannot be delivered to the remote sender
    const res: NoticeResult[] = [{ recipientId: notice.recipients[0]!.id, outcome: 'failed', reason: 'host mx.remote.test[192.0.2.1] said: 550 5.1.1 <someone@remote.test>: unknown' }];
    const [copyId, ...more] = await n.notify(notice, res, () => t.store.queue.content(notice.id), clock.now());
    assert.deepEqual(more, []);
    const copy = await t.store.queue.get(copyId!);
    assert.equal(copy?.sender, '');
    assert.deepEqual(copy?.recipients.map((r) => [r.address, r.notify]), [['postmaster@example.test', ['NEVER']]]);
    assert.equal(copy?.meta.postmaster_copy, true);
    const text = (await t.store.queue.content(copyId!)).toString();
    assert.match(text, /\r\nSubject: Postmaster Copy: Undelivered Mail Returned to Sender\r\nTo: postmaster@example\.test\r\n/);
    assert.match(text, /A delivery status notification that this system generated could not/);
    assert.match(text, /X-Cartero-Sender: rfc822; <>\r\n/);
    assert.match(text, /Final-Recipient: rfc822; someone@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.remote\.test/);
    assert.match(text, /Content-Type: message\/rfc822\r\n[\s\S]*Subject: Undelivered Mail Returned to Sender/, 'the notice is returned whole');
    assert.ok(cap.lines.some((l) => String(l.msg).includes(`undeliverable notification reported to <postmaster@example.test>: ${copyId}`)));
    // the postmaster copy failing too: discarded with a log line, nothing queued
    const copyEntry = copy!;
    const before = (await t.store.queue.list()).length;
    assert.deepEqual(await n.notify(copyEntry, [{ recipientId: copyEntry.recipients[0]!.id, outcome: 'failed', reason: '550 5.1.1 no' }], () => t.store.queue.content(copyEntry.id), clock.now()), []);
    assert.equal((await t.store.queue.list()).length, before);
    assert.ok(cap.lines.some((l) => /undeliverable postmaster copy discarded/.test(String(l.msg))));
    // the copy reaches the postmaster's mailbox
    await p.scheduler.runOnce();
    const inbox = await inboxTexts(t.store, 'postmaster@example.test');
    assert.equal(inbox.length, 1);
    assert.match(inbox[0]!, /Subject: Postmaster Copy:/);
  });

  test('a relayed null-sender message and a notifier without a double-bounce address only log', async () => {
    const cap = captureLogger();
    const withPm = createDsnNotifier({ commit: p.commit, logger: cap.logger, hostname: 'mx.example.test', backoff: BACKOFF, doubleBounceRecipient: 'postmaster@example.test' });
    const foreign = await queued('', [{ address: 'y@remote.test' }], { protocol: 'esmtp', dsn: 'failure' });
    assert.equal(isOwnNotice(foreign), false, 'protocol dsn is set by our notifier only');
    assert.deepEqual(await withPm.notify(foreign, [{ recipientId: idOf(foreign, 'y@remote.test'), outcome: 'failed', reason: '550 no' }], () => t.store.queue.content(foreign.id), clock.now()), []);
    const e = await queued('someone@remote.test', [{ address: 'x@remote.test' }]);
    const [noticeId] = await notifier.notify(e, [{ recipientId: idOf(e, 'x@remote.test'), outcome: 'failed', reason: '550 5.1.1 no' }], () => t.store.queue.content(e.id), clock.now());
    const notice = (await t.store.queue.get(noticeId!))!;
    assert.deepEqual(await notifier.notify(notice, [{ recipientId: notice.recipients[0]!.id, outcome: 'failed', reason: '550 no' }], () => t.store.queue.content(notice.id), clock.now()), []);
    assert.ok(lines.some((l) => /never bounce a bounce/.test(String(l.msg))));
    // deferred and delivered results of a notice are not reported at all
    assert.deepEqual(await withPm.notify(notice, [{ recipientId: notice.recipients[0]!.id, outcome: 'deferred', reason: '451 later' }], () => t.store.queue.content(notice.id), clock.now() + 10 * H), []);
  });

  test('bounce_queue_lifetime: null-sender entries are given up earlier; the scheduler loop ends', async () => {
    const base = BACKOFF;
    assert.equal(noticeBackoff({ sender: '' }, base, 2 * H).lifetimeMs, 2 * H);
    assert.equal(noticeBackoff({ sender: 'a@b.test' }, base, 2 * H).lifetimeMs, base.lifetimeMs);
    assert.equal(noticeBackoff({ sender: '' }, base, null).lifetimeMs, base.lifetimeMs);
    const n = createDsnNotifier({ commit: p.commit, logger: captureLogger().logger, hostname: 'mx.example.test', backoff: base, bounceLifetimeMs: 2 * H });
    const e = await queued('', [{ address: 'x@remote.test' }]);
    assert.equal(n.backoffFor?.(e, base).lifetimeMs, 2 * H);

    // every destination refuses: message → notice → postmaster copy → discarded, and the queue empties
    await t.store.queue.list().then((all) => Promise.all(all.map((x) => t.store.queue.remove(x.id))));
    const cap = captureLogger();
    const dn = createDsnNotifier({ commit: p.commit, logger: cap.logger, hostname: 'mx.example.test', backoff: base, doubleBounceRecipient: 'postmaster@example.test' });
    const scheduler = new QueueScheduler({
      store: t.store,
      logger: cap.logger,
      clock,
      router: () => ({ kind: 'error', permanent: true, status: '5.7.1', text: 'refused by the transport table' }),
      local: createLocalAgent({ store: t.store, delimiters: '+' }),
      notifier: dn,
      owner: 'test',
      concurrency: 4,
      leaseMs: 60_000,
      pollIntervalMs: 1000,
      backoff: base,
    });
    await p.commit({ sender: 'alice@example.test', recipients: [{ address: 'x@remote.test' }], meta: {} }, message('loop'));
    const seen = new Set<string>();
    for (let round = 0; round < 10; round++) {
      for (const q of await t.store.queue.list()) seen.add(q.id);
      if ((await scheduler.runOnce()) === 0) break;
    }
    assert.deepEqual(await t.store.queue.list(), []);
    assert.equal(seen.size, 3, 'the message, its notice and one postmaster copy');
    assert.ok(cap.lines.some((l) => /undeliverable postmaster copy discarded/.test(String(l.msg))));
  });
});
