/*
 * The store contract: one suite that every backend must pass. Backend test files call
 * runStoreContract with a factory that opens a fresh, empty, migrated store for each test.
 * It checks behaviour through the public API only, never a backend's tables.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Store } from '../../src/store/api.js';
import { StoreError } from '../../src/store/errors.js';

export interface ContractHandle {
  store: Store;
  cleanup(): Promise<void>;
  /** damages the stored bytes of a blob so that reads must detect it */
  corruptBlob?(id: string): Promise<void>;
  /** a second, independent Store on the same data (another node); postgres only */
  openPeer?(): Promise<Store>;
}

type Open = () => Promise<ContractHandle>;

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);

async function rejectsKind(p: Promise<unknown>, kind: StoreError['kind']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError(${kind}), got ${String(err)}`);
    assert.equal(err.kind, kind);
    return true;
  });
}

function message(body: string, extra = ''): Buffer {
  return Buffer.from(`From: a@example.test\r\nTo: b@example.test\r\nSubject: t${extra}\r\n\r\n${body}\r\n`);
}

async function withStore(open: Open, fn: (h: ContractHandle) => Promise<void>): Promise<void> {
  const h = await open();
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

/** A domain (when missing), an account and its INBOX: the set-up of most store tests. */
export async function setupAccount(store: Store, address = 'alice@example.test', quotaBytes: number | null = null) {
  const domain = address.slice(address.indexOf('@') + 1);
  if (!(await store.directory.getDomain(domain))) await store.directory.addDomain(domain);
  const account = await store.directory.addAccount({ address, passwordHash: 'x', quotaBytes });
  const inbox = await store.mailboxes.create(account.id, 'INBOX');
  return { account, inbox };
}

export function runStoreContract(name: string, open: Open): void {
  const t = (title: string, fn: (h: ContractHandle) => Promise<void>) => test(title, () => withStore(open, fn));

  describe(`store contract: ${name}`, () => {
    describe('directory', () => {
      t('domains: add, get, list, remove, errors', async ({ store }) => {
        const d = await store.directory.addDomain('Example.TEST');
        assert.equal(d.name, 'example.test');
        await rejectsKind(store.directory.addDomain('example.test'), 'exists');
        await store.directory.addDomain('b.test');
        assert.deepEqual((await store.directory.listDomains()).map((x) => x.name), ['b.test', 'example.test']);
        assert.equal((await store.directory.getDomain('EXAMPLE.test'))?.name, 'example.test');
        await store.directory.removeDomain('b.test');
        await rejectsKind(store.directory.removeDomain('b.test'), 'not_found');
        assert.equal(await store.directory.getDomain('b.test'), null);
        await rejectsKind(store.directory.addDomain('bad domain'), 'invalid');
      });

      t('accounts: add, case-insensitive lookup, passwd, quota, remove', async ({ store }) => {
        await rejectsKind(store.directory.addAccount({ address: 'bob@nodomain.test', passwordHash: 'h' }), 'not_found');
        await store.directory.addDomain('example.test');
        const a = await store.directory.addAccount({ address: 'Bob@Example.test', passwordHash: 'h1', quotaBytes: 1000 });
        assert.equal(a.address, 'bob@example.test');
        assert.equal(a.domain, 'example.test');
        assert.equal(a.quotaBytes, 1000);
        await rejectsKind(store.directory.addAccount({ address: 'bob@example.test', passwordHash: 'h' }), 'exists');
        assert.equal((await store.directory.getAccount('BOB@example.test'))?.id, a.id);
        assert.equal((await store.directory.getAccountById(a.id))?.address, 'bob@example.test');
        await store.directory.setPassword('bob@example.test', 'h2');
        assert.equal((await store.directory.getAccount('bob@example.test'))?.passwordHash, 'h2');
        await store.directory.setQuota('bob@example.test', null);
        assert.equal((await store.directory.getAccount('bob@example.test'))?.quotaBytes, null);
        await store.directory.addAccount({ address: 'amy@example.test', passwordHash: null });
        assert.deepEqual((await store.directory.listAccounts()).map((x) => x.address), ['amy@example.test', 'bob@example.test']);
        assert.deepEqual((await store.directory.listAccounts('other.test')).length, 0);
        await rejectsKind(store.directory.removeDomain('example.test'), 'conflict');
        await store.directory.removeAccount('bob@example.test');
        assert.equal(await store.directory.getAccount('bob@example.test'), null);
        await rejectsKind(store.directory.removeAccount('bob@example.test'), 'not_found');
        await rejectsKind(store.directory.setPassword('bob@example.test', 'x'), 'not_found');
        await rejectsKind(store.directory.setQuota('bob@example.test', 1), 'not_found');
      });

      t('aliases: add, catch-all, clash with accounts, remove', async ({ store }) => {
        await store.directory.addDomain('example.test');
        await store.directory.addAccount({ address: 'bob@example.test', passwordHash: null });
        await rejectsKind(store.directory.addAlias({ source: 'x@other.test', targets: ['bob@example.test'] }), 'not_found');
        await rejectsKind(store.directory.addAlias({ source: 'bob@example.test', targets: ['a@b.test'] }), 'exists');
        await rejectsKind(store.directory.addAlias({ source: 'post@example.test', targets: [] }), 'invalid');
        await store.directory.addAlias({ source: 'Postmaster@example.test', targets: ['bob@example.test', 'ext@remote.test'] });
        await store.directory.addAlias({ source: '@example.test', targets: ['bob@example.test'] });
        await rejectsKind(store.directory.addAccount({ address: 'postmaster@example.test', passwordHash: null }), 'exists');
        assert.deepEqual(await store.directory.getAlias('postmaster@EXAMPLE.test'), {
          source: 'postmaster@example.test',
          targets: ['bob@example.test', 'ext@remote.test'],
        });
        assert.deepEqual((await store.directory.listAliases('example.test')).map((a) => a.source), ['@example.test', 'postmaster@example.test']);
        await store.directory.removeAlias('postmaster@example.test');
        await rejectsKind(store.directory.removeAlias('postmaster@example.test'), 'not_found');
        assert.equal(await store.directory.getAlias('postmaster@example.test'), null);
      });
    });

    describe('queue', () => {
      const rcpts = (...a: string[]) => a.map((address) => ({ address }));

      t('commit stores blob, envelope and recipients; content is verified', async ({ store }) => {
        const content = message('hello');
        const { id, blobId } = await store.queue.commit(
          { sender: 'a@x.test', recipients: [{ address: 'b@y.test', orcpt: 'rfc822;b@y.test', notify: ['FAILURE'] }, { address: 'c@y.test' }], content, meta: { client: '127.0.0.1', envid: 'E1' } },
          T0,
        );
        const e = await store.queue.get(id);
        assert.ok(e);
        assert.equal(e.sender, 'a@x.test');
        assert.equal(e.blobId, blobId);
        assert.equal(e.size, content.length);
        assert.equal(e.state, 'active');
        assert.equal(e.dueAt, T0);
        assert.equal(e.receivedAt, T0);
        assert.deepEqual(e.meta, { client: '127.0.0.1', envid: 'E1' });
        assert.deepEqual(e.recipients.map((r) => [r.address, r.state, r.orcpt, r.notify]), [
          ['b@y.test', 'pending', 'rfc822;b@y.test', ['FAILURE']],
          ['c@y.test', 'pending', null, null],
        ]);
        assert.deepEqual(await store.queue.content(id), content);
        assert.equal(await store.blobs.refs(blobId), 1);
        const again = await store.queue.commit({ sender: '', recipients: rcpts('d@y.test'), content }, T0);
        assert.equal(again.blobId, blobId, 'equal content is stored once');
        assert.equal(await store.blobs.refs(blobId), 2);
        assert.equal((await store.queue.get(again.id))?.sender, '');
        await rejectsKind(store.queue.content('NOSUCHID'), 'not_found');
      });

      t('large messages round-trip byte for byte', async ({ store }) => {
        const big = Buffer.concat([message('big'), randomBytes(300 * 1024)]);
        const { id } = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: big }, T0);
        assert.deepEqual(await store.queue.content(id), big);
        const { inbox } = await setupAccount(store);
        await store.messages.append(inbox.id, { content: big }, T0);
        assert.deepEqual(await store.messages.content(inbox.id, 1), big);
      });

      t('lease hands out due, active entries only, and bumps attempts', async ({ store }) => {
        const a = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('a') }, T0);
        await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('b'), dueAt: T0 + 60_000 }, T0);
        await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('c'), hold: true }, T0);
        const leases = await store.queue.lease({ owner: 'n1', limit: 10, leaseMs: 120_000, now: T0 });
        assert.deepEqual(leases.map((l) => l.entry.id), [a.id]);
        const l = leases[0]!;
        assert.equal(l.expiresAt, T0 + 120_000);
        assert.equal(l.entry.leaseOwner, 'n1');
        assert.equal(l.entry.attempts, 1);
        assert.equal(l.entry.recipients.length, 1);
        assert.equal((await store.queue.lease({ owner: 'n2', limit: 10, leaseMs: 30_000, now: T0 + 1 })).length, 0, 'leased entry is not due');
        const later = await store.queue.lease({ owner: 'n2', limit: 10, leaseMs: 30_000, now: T0 + 60_000 });
        assert.equal(later.length, 1, 'the delayed entry became due; the leased one is still held');
        const counts = await store.queue.counts(T0 + 60_000);
        assert.deepEqual(counts, { active: 2, held: 1, leased: 2, due: 0 });
      });

      t('parallel lease calls never hand one entry to two callers', async ({ store }) => {
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) ids.push((await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message(`m${i}`) }, T0)).id);
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => store.queue.lease({ owner: `w${i}`, limit: 5, leaseMs: 30_000, now: T0 + 10 })),
        );
        const got = results.flat().map((l) => l.entry.id);
        assert.equal(new Set(got).size, got.length, 'an entry was handed out twice');
        assert.equal(got.length, 40);
        assert.deepEqual([...got].sort(), [...ids].sort());
      });

      t('an expired lease is handed out again and the stale token is refused', async ({ store }) => {
        const { id } = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('x') }, T0);
        const [first] = await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 1000, now: T0 });
        assert.ok(first);
        assert.equal((await store.queue.lease({ owner: 'n2', limit: 1, leaseMs: 1000, now: T0 + 999 })).length, 0);
        const [second] = await store.queue.lease({ owner: 'n2', limit: 1, leaseMs: 1000, now: T0 + 1001 });
        assert.ok(second, 'expired lease was not handed out again');
        assert.equal(second.entry.id, id);
        assert.ok(second.token !== first.token);
        assert.equal(second.entry.attempts, 2);
        const rid = first.entry.recipients[0]!.id;
        await rejectsKind(store.queue.complete(id, first.token, [{ recipientId: rid, outcome: 'done' }], T0 + 1100), 'stale_lease');
        await rejectsKind(store.queue.renew(id, first.token, 1000, T0 + 1100), 'stale_lease');
        assert.equal((await store.queue.get(id))?.recipients[0]?.state, 'pending', 'stale holder changed nothing');
        const res = await store.queue.complete(id, second.token, [{ recipientId: rid, outcome: 'done' }], T0 + 1200);
        assert.deepEqual(res, { pending: 0, removed: true });
        assert.equal(await store.queue.get(id), null);
        await rejectsKind(store.queue.complete(id, second.token, [{ recipientId: rid, outcome: 'done' }], T0 + 1300), 'stale_lease');
      });

      t('a completed lease cannot complete twice; requeue does not race a live holder', async ({ store }) => {
        const { id } = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('a@y.test', 'b@y.test'), content: message('x') }, T0);
        const [l] = await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 10_000, now: T0 });
        assert.ok(l);
        const [a, b] = l.entry.recipients;
        await store.queue.requeue(id, T0 + 1);
        assert.equal((await store.queue.get(id))?.dueAt, T0 + 10_000, 'a leased entry stays with its holder');
        assert.equal((await store.queue.lease({ owner: 'n2', limit: 1, leaseMs: 10_000, now: T0 + 2 })).length, 0);
        await store.queue.complete(id, l.token, [{ recipientId: a!.id, outcome: 'deferred', reason: 'later', retryAt: T0 + 60_000 }, { recipientId: b!.id, outcome: 'done' }], T0 + 3);
        await rejectsKind(store.queue.complete(id, l.token, [{ recipientId: a!.id, outcome: 'done' }], T0 + 4), 'stale_lease');
        await store.queue.requeue(id, T0 + 5);
        assert.equal((await store.queue.get(id))?.dueAt, T0 + 5, 'an idle entry is due now after requeue');
      });

      t('complete records per-recipient outcomes, defers, then removes and drops the blob reference', async ({ store }) => {
        const { id, blobId } = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('a@y.test', 'b@y.test', 'c@y.test', 'd@y.test'), content: message('x') }, T0);
        const [l] = await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 60_000, now: T0 });
        assert.ok(l);
        const [a, b, c, d] = l.entry.recipients;
        assert.ok(a && b && c && d);
        const r1 = await store.queue.complete(
          id,
          l.token,
          [
            { recipientId: a.id, outcome: 'done' },
            { recipientId: b.id, outcome: 'failed', reason: '550 5.1.1 no such user' },
            { recipientId: c.id, outcome: 'deferred', reason: '451 4.3.0 try later', retryAt: T0 + 300_000 },
            { recipientId: d.id, outcome: 'deferred', reason: 'connection refused', retryAt: T0 + 200_000 },
          ],
          T0 + 10,
        );
        assert.deepEqual(r1, { pending: 2, removed: false });
        const e = await store.queue.get(id);
        assert.ok(e);
        assert.equal(e.dueAt, T0 + 200_000);
        assert.equal(e.leaseOwner, null);
        const byAddr = new Map(e.recipients.map((r) => [r.address, r]));
        assert.equal(byAddr.get('a@y.test')?.state, 'done');
        assert.equal(byAddr.get('b@y.test')?.state, 'failed');
        assert.equal(byAddr.get('b@y.test')?.lastError, '550 5.1.1 no such user');
        assert.equal(byAddr.get('c@y.test')?.state, 'pending');
        assert.equal(byAddr.get('c@y.test')?.lastError, '451 4.3.0 try later');
        assert.equal((await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 1000, now: T0 + 199_999 })).length, 0);
        const [l2] = await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 1000, now: T0 + 200_000 });
        assert.ok(l2);
        assert.deepEqual(l2.entry.recipients.filter((r) => r.state === 'pending').map((r) => r.address), ['c@y.test', 'd@y.test']);
        const r2 = await store.queue.complete(id, l2.token, [{ recipientId: c.id, outcome: 'done' }], T0 + 200_001);
        assert.deepEqual(r2, { pending: 1, removed: false });
        assert.equal((await store.queue.get(id))?.dueAt, T0 + 200_001, 'an unnamed pending recipient is due now');
        const [l3] = await store.queue.lease({ owner: 'n1', limit: 1, leaseMs: 1000, now: T0 + 200_002 });
        assert.ok(l3);
        const renewed = await store.queue.renew(id, l3.token, 5000, T0 + 200_003);
        assert.equal(renewed, T0 + 205_003);
        assert.deepEqual(await store.queue.complete(id, l3.token, [{ recipientId: d.id, outcome: 'done' }], T0 + 200_004), { pending: 0, removed: true });
        assert.equal(await store.blobs.refs(blobId), 0);
      });

      t('hold, release, requeue, remove, list', async ({ store }) => {
        const a = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('a') }, T0);
        const b = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('b'), dueAt: T0 + 999_999 }, T0 + 1);
        await store.queue.hold(a.id);
        assert.equal((await store.queue.get(a.id))?.state, 'held');
        assert.equal((await store.queue.lease({ owner: 'n', limit: 5, leaseMs: 1000, now: T0 + 5 })).length, 0);
        assert.deepEqual((await store.queue.list({ state: 'held' })).map((e) => e.id), [a.id]);
        assert.deepEqual((await store.queue.list()).map((e) => e.id), [a.id, b.id]);
        await store.queue.release(a.id, T0 + 10);
        await store.queue.requeue(b.id, T0 + 10);
        assert.equal((await store.queue.lease({ owner: 'n', limit: 5, leaseMs: 1000, now: T0 + 10 })).length, 2);
        await store.queue.remove(a.id);
        assert.equal(await store.queue.get(a.id), null);
        await rejectsKind(store.queue.hold(a.id), 'not_found');
        await rejectsKind(store.queue.release(a.id, T0), 'not_found');
        await rejectsKind(store.queue.requeue(a.id, T0), 'not_found');
        await rejectsKind(store.queue.remove(a.id), 'not_found');
        assert.equal((await store.queue.list({ limit: 10 })).length, 1);
      });

      t('flushDomain makes entries with a pending recipient in the domain due now; @domain form takes subdomains', async ({ store }) => {
        const later = T0 + 999_999;
        const a = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('u@Relay.TEST'), content: message('a'), dueAt: later }, T0);
        const b = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('v@other.test', 'w@relay.test'), content: message('b'), dueAt: later }, T0 + 1);
        const c = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('x@mx.relay.test'), content: message('c'), dueAt: later }, T0 + 2);
        const d = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('"y@relay.test"@evil.test', 'z@notrelay.test'), content: message('d'), dueAt: later }, T0 + 3);
        const held = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('h@relay.test'), content: message('e'), hold: true }, T0 + 4);
        assert.deepEqual(await store.queue.flushDomain('RELAY.test.', T0 + 10), [a.id, b.id]);
        assert.equal((await store.queue.get(a.id))?.dueAt, T0 + 10);
        assert.equal((await store.queue.get(c.id))?.dueAt, later, 'a subdomain is not the domain');
        assert.equal((await store.queue.get(d.id))?.dueAt, later, 'a quoted local part is not the domain');
        assert.equal((await store.queue.get(held.id))?.state, 'held');
        assert.deepEqual(await store.queue.flushDomain('relay.test', T0 + 20, { subdomains: true }), [a.id, b.id, c.id]);
        assert.deepEqual(await store.queue.flushDomain('nothing.test', T0 + 20), []);
        // a recipient already done does not count
        const [l] = await store.queue.lease({ owner: 'n', limit: 1, leaseMs: 1000, now: T0 + 30 });
        assert.equal(l?.entry.id, a.id);
        await store.queue.complete(a.id, l!.token, [{ recipientId: l!.entry.recipients[0]!.id, outcome: 'done' }], T0 + 31);
        const [lb] = await store.queue.lease({ owner: 'n', limit: 1, leaseMs: 1000, now: T0 + 32 });
        assert.equal(lb?.entry.id, b.id);
        const w = lb!.entry.recipients.find((r) => r.address === 'w@relay.test')!;
        const v = lb!.entry.recipients.find((r) => r.address === 'v@other.test')!;
        await store.queue.complete(b.id, lb!.token, [{ recipientId: w.id, outcome: 'done' }, { recipientId: v.id, outcome: 'deferred', reason: 'x', retryAt: later }], T0 + 33);
        assert.deepEqual(await store.queue.flushDomain('relay.test', T0 + 40), []);
        for (const bad of ['', 'a b.test', "x.test'; --", '%.test', '@relay.test']) await rejectsKind(store.queue.flushDomain(bad, T0), 'invalid');
      });

      t('pause keeps entries bound only for the paused domain from lease; resume makes them due now', async ({ store }) => {
        const only = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('a@paused.test', 'b@PAUSED.test'), content: message('a') }, T0);
        const mixed = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('c@paused.test', 'd@free.test'), content: message('b') }, T0 + 1);
        const sub = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('e@sub.paused.test'), content: message('c') }, T0 + 2);
        assert.equal(await store.queue.pause('Paused.TEST', 'alice (pid 1) on h', T0 + 3), true);
        assert.equal(await store.queue.pause('paused.test', 'bob', T0 + 4), false);
        assert.deepEqual(await store.queue.pauses(), [{ domain: 'paused.test', by: 'alice (pid 1) on h', since: T0 + 3 }]);
        const leased = await store.queue.lease({ owner: 'n', limit: 10, leaseMs: 10_000_000, now: T0 + 5 });
        assert.deepEqual(leased.map((l) => l.entry.id).sort(), [mixed.id, sub.id].sort());
        assert.equal((await store.queue.get(only.id))?.dueAt, T0, 'a skipped entry is untouched');
        // the mixed entry's free recipient is done: now it waits for the paused domain too
        const lm = leased.find((l) => l.entry.id === mixed.id)!;
        const c = lm.entry.recipients.find((r) => r.address === 'c@paused.test')!;
        const d = lm.entry.recipients.find((r) => r.address === 'd@free.test')!;
        await store.queue.complete(mixed.id, lm.token, [{ recipientId: d.id, outcome: 'done' }, { recipientId: c.id, outcome: 'deferred', reason: 'paused', retryAt: T0 + 500_000 }], T0 + 6);
        assert.equal((await store.queue.lease({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 600_000 })).length, 0);
        await rejectsKind(store.queue.resume('never-paused.test', T0), 'not_found');
        await rejectsKind(store.queue.pause('bad domain', 'x', T0), 'invalid');
        assert.deepEqual(await store.queue.resume('PAUSED.test', T0 + 700_000), [only.id, mixed.id]);
        assert.deepEqual(await store.queue.pauses(), []);
        assert.equal((await store.queue.get(mixed.id))?.dueAt, T0 + 700_000);
        const after = await store.queue.lease({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 700_000 });
        assert.deepEqual(after.map((l) => l.entry.id).sort(), [only.id, mixed.id].sort());
      });

      t('the admin log keeps records in order, by target, newest N with limit, after the entry is gone', async ({ store }) => {
        const { id } = await store.queue.commit({ sender: 's@x.test', recipients: rcpts('r@y.test'), content: message('a') }, T0);
        await store.queue.recordAdmin({ at: T0 + 1, actor: 'alice (pid 1) on h', action: 'hold', target: id, detail: null });
        await store.queue.recordAdmin({ at: T0 + 2, actor: 'smtp 192.0.2.1', action: 'etrn', target: 'relay.test', detail: '3 entries' });
        await store.queue.recordAdmin({ at: T0 + 3, actor: 'bob (pid 2) on h', action: 'delete', target: id, detail: 'selected by --sender s@x.test' });
        await store.queue.remove(id);
        assert.deepEqual(await store.queue.adminLog({ target: id }), [
          { at: T0 + 1, actor: 'alice (pid 1) on h', action: 'hold', target: id, detail: null },
          { at: T0 + 3, actor: 'bob (pid 2) on h', action: 'delete', target: id, detail: 'selected by --sender s@x.test' },
        ]);
        assert.deepEqual((await store.queue.adminLog()).map((r) => r.action), ['hold', 'etrn', 'delete']);
        assert.deepEqual((await store.queue.adminLog({ limit: 2 })).map((r) => r.action), ['etrn', 'delete']);
        assert.deepEqual(await store.queue.adminLog({ target: 'nothing' }), []);
      });
    });

    describe('mailboxes', () => {
      t('create, get, list, subscribe, rename with children, delete', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        assert.equal(inbox.uidNext, 1);
        assert.equal(inbox.messages, 0);
        assert.ok(inbox.uidValidity > 0);
        await rejectsKind(store.mailboxes.create(account.id, 'INBOX'), 'exists');
        await rejectsKind(store.mailboxes.create(999_999, 'X'), 'not_found');
        const sent = await store.mailboxes.create(account.id, 'Sent', { specialUse: '\\Sent', subscribed: true });
        assert.equal(sent.specialUse, '\\Sent');
        assert.equal(sent.subscribed, true);
        await store.mailboxes.create(account.id, 'Work');
        await store.mailboxes.create(account.id, 'Work/Projects');
        await store.mailboxes.create(account.id, 'Workshop');
        await store.mailboxes.setSubscribed(account.id, 'Work', true);
        assert.equal((await store.mailboxes.get(account.id, 'Work'))?.subscribed, true);
        await rejectsKind(store.mailboxes.setSubscribed(account.id, 'Nope', true), 'not_found');
        const before = await store.mailboxes.get(account.id, 'Work/Projects');
        await store.mailboxes.rename(account.id, 'Work', 'Jobs', { separator: '/' });
        assert.deepEqual((await store.mailboxes.list(account.id)).map((m) => m.name), ['INBOX', 'Jobs', 'Jobs/Projects', 'Sent', 'Workshop']);
        const after = await store.mailboxes.get(account.id, 'Jobs/Projects');
        assert.equal(after?.id, before?.id);
        assert.equal(after?.uidValidity, before?.uidValidity);
        await rejectsKind(store.mailboxes.rename(account.id, 'Jobs', 'Sent'), 'exists');
        await rejectsKind(store.mailboxes.rename(account.id, 'Nope', 'X'), 'not_found');
        await store.mailboxes.delete(account.id, 'Jobs/Projects');
        await rejectsKind(store.mailboxes.delete(account.id, 'Jobs/Projects'), 'not_found');
        assert.equal(await store.mailboxes.get(account.id, 'Jobs/Projects'), null);
        assert.equal((await store.mailboxes.getById(sent.id))?.name, 'Sent');
      });
    });

    describe('messages', () => {
      t('append allocates UIDs and MODSEQs and keeps counters exact', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        const m1 = message('one');
        const r1 = await store.messages.append(inbox.id, { content: m1, flags: ['\\Seen'], internalDate: T0 }, T0);
        const r2 = await store.messages.append(inbox.id, { content: message('two') }, T0);
        assert.equal(r1.uid, 1);
        assert.equal(r2.uid, 2);
        assert.ok(r2.modseq > r1.modseq);
        assert.equal(r1.uidValidity, inbox.uidValidity);
        assert.equal(r1.duplicate, false);
        const mb = await store.mailboxes.getById(inbox.id);
        assert.ok(mb);
        assert.equal(mb.uidNext, 3);
        assert.equal(mb.messages, 2);
        assert.equal(mb.unseen, 1);
        assert.equal(mb.size, m1.length + message('two').length);
        assert.equal(mb.highestModseq, r2.modseq);
        const list = await store.messages.list(inbox.id);
        assert.deepEqual(list.map((m) => [m.uid, m.flags]), [[1, ['\\Seen']], [2, []]]);
        assert.equal(list[0]?.internalDate, T0);
        assert.equal(list[0]?.size, m1.length);
        assert.deepEqual(await store.messages.content(inbox.id, 1), m1);
        assert.deepEqual((await store.messages.list(inbox.id, [{ from: 2, to: Number.MAX_SAFE_INTEGER }])).map((m) => m.uid), [2]);
        await rejectsKind(store.messages.content(inbox.id, 99), 'not_found');
        await rejectsKind(store.messages.append(999_999, { content: m1 }, T0), 'not_found');
      });

      t('index() holds the rows of list() in columns, each distinct flag set once', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        const flagsOf = [['\\Seen'], [], ['\\Seen'], ['\\Flagged', '$Work'], []];
        for (const [i, flags] of flagsOf.entries()) await store.messages.append(inbox.id, { content: message(`ix${i}`), flags, internalDate: T0 + i }, T0);
        await store.messages.setFlags(inbox.id, [{ from: 2, to: 2 }], 'add', ['\\Answered']);
        await store.messages.setFlags(inbox.id, [{ from: 4, to: 4 }], 'add', ['\\Deleted']);
        await store.messages.expunge(inbox.id);
        for (const ranges of [undefined, [{ from: 2, to: 4 }], [{ from: 5, to: Number.MAX_SAFE_INTEGER }, { from: 1, to: 1 }]]) {
          const list = await store.messages.list(inbox.id, ranges);
          const ix = await store.messages.index(inbox.id, ranges);
          assert.deepEqual(ix.uids, list.map((m) => m.uid));
          assert.deepEqual(ix.modseqs, list.map((m) => m.modseq));
          assert.deepEqual(ix.internalDates, list.map((m) => m.internalDate));
          assert.deepEqual(ix.sizes, list.map((m) => m.size));
          assert.deepEqual(ix.flags.map((f) => ix.flagSets[f]), list.map((m) => m.flags));
          assert.equal(new Set(ix.flagSets.map((s) => JSON.stringify(s))).size, ix.flagSets.length);
        }
        const all = await store.messages.index(inbox.id);
        assert.deepEqual(all.uids, [1, 2, 3, 5]);
        assert.equal(all.flags[0], all.flags[2]);
        assert.equal(all.flagSets.length, 3);
        assert.deepEqual(await store.messages.index(999_999), { uids: [], modseqs: [], internalDates: [], sizes: [], flags: [], flagSets: [] });
      });

      t('32 parallel appends get distinct increasing UIDs and a reader never sees a gap', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        let done = false;
        const observed: number[][] = [];
        const reader = (async () => {
          while (!done) {
            observed.push((await store.messages.list(inbox.id)).map((m) => m.uid));
            await new Promise((r) => setImmediate(r));
          }
        })();
        const results = await Promise.all(
          Array.from({ length: 32 }, (_, i) => store.messages.append(inbox.id, { content: message(`p${i}`, randomBytes(4).toString('hex')) }, T0)),
        );
        done = true;
        await reader;
        const uids = results.map((r) => r.uid).sort((a, b) => a - b);
        assert.deepEqual(uids, Array.from({ length: 32 }, (_, i) => i + 1));
        assert.equal(new Set(results.map((r) => r.modseq)).size, 32);
        for (const seen of observed) {
          seen.forEach((uid, i) => assert.equal(uid, i + 1, `reader saw a gap: ${seen.join(',')}`));
        }
        const mb = await store.mailboxes.getById(inbox.id);
        assert.equal(mb?.messages, 32);
        assert.equal(mb?.uidNext, 33);
      });

      t('the same idempotency key appended twice (even in parallel) yields one message', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        const content = message('once');
        const first = await store.messages.append(inbox.id, { content, idempotencyKey: 'Q1:alice@example.test' }, T0);
        const again = await store.messages.append(inbox.id, { content, idempotencyKey: 'Q1:alice@example.test' }, T0);
        assert.equal(again.duplicate, true);
        assert.equal(again.uid, first.uid);
        const par = await Promise.all(Array.from({ length: 8 }, () => store.messages.append(inbox.id, { content, idempotencyKey: 'Q2:alice@example.test' }, T0)));
        assert.equal(new Set(par.map((r) => r.uid)).size, 1);
        assert.equal(par.filter((r) => !r.duplicate).length, 1);
        assert.equal((await store.messages.list(inbox.id)).length, 2);
        const q = await store.messages.quota(account.id);
        assert.equal(q.messages, 2);
        assert.equal(q.bytes, content.length * 2);
      });

      t('an exact copy (the same delivery digest) is filed once per account within the window, even in parallel', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        const { inbox: bobInbox } = await setupAccount(store, 'bob@example.test');
        const { inbox: tiny } = await setupAccount(store, 'tiny@example.test', 10);
        const content = message('copy');
        const d = (digest: string, now: number) => ({ digest, since: now - 1000 });
        const first = await store.messages.append(inbox.id, { content, idempotencyKey: 'A:alice', deliveryDigest: d('D1', T0) }, T0);
        assert.equal(first.duplicate, false);
        // another queue entry (another idempotency key), the same digest: suppressed
        const copy = await store.messages.append(inbox.id, { content, idempotencyKey: 'B:alice', deliveryDigest: d('D1', T0 + 500) }, T0 + 500);
        assert.deepEqual([copy.duplicate, copy.uid], [true, 0]);
        // the same queue entry again is still the idempotent answer, with the first copy's UID
        assert.deepEqual([(await store.messages.append(inbox.id, { content, idempotencyKey: 'A:alice', deliveryDigest: d('D1', T0) }, T0)).uid], [first.uid]);
        // another account, another digest: filed
        assert.equal((await store.messages.append(bobInbox.id, { content, deliveryDigest: d('D1', T0) }, T0)).duplicate, false);
        assert.equal((await store.messages.append(inbox.id, { content, deliveryDigest: d('D2', T0) }, T0)).duplicate, false);
        // past the window (since after the first delivery): filed again, and the digest's age renewed
        const later = T0 + 5000;
        assert.equal((await store.messages.append(inbox.id, { content, deliveryDigest: d('D1', later) }, later)).duplicate, false);
        assert.equal((await store.messages.append(inbox.id, { content, deliveryDigest: d('D1', later + 10) }, later + 10)).duplicate, true);
        // eight copies at once (two nodes filing the two copies): one is filed
        const par = await Promise.all(Array.from({ length: 8 }, (_, i) => store.messages.append(inbox.id, { content, idempotencyKey: `P${i}`, deliveryDigest: d('D3', T0) }, T0)));
        assert.equal(par.filter((r) => !r.duplicate).length, 1);
        assert.equal((await store.messages.list(inbox.id)).length, 4);
        // an append that fails (over quota) records no digest: the next copy is filed once there is room
        await assert.rejects(store.messages.append(tiny.id, { content, deliveryDigest: d('D4', T0) }, T0), (e) => e instanceof Error && /quota/.test(e.message));
        assert.equal((await store.messages.append(bobInbox.id, { content, deliveryDigest: d('D4', T0) }, T0)).duplicate, false);
        // a client's APPEND carries no digest and is never suppressed
        assert.equal((await store.messages.append(inbox.id, { content }, T0)).duplicate, false);
        // pruning forgets digests recorded before the mark: alice's D1 (renewed later) stays; alice's D2 and
        // D3 and bob's D1 and D4, all recorded at T0, go
        assert.equal(await store.messages.pruneDigests(T0 + 1), 4);
        assert.equal(await store.messages.pruneDigests(T0 + 1), 0);
        assert.equal((await store.messages.append(inbox.id, { content, deliveryDigest: d('D2', T0 + 20) }, T0 + 20)).duplicate, false);
        assert.equal((await store.messages.append(inbox.id, { content, deliveryDigest: d('D1', later + 20) }, later + 20)).duplicate, true);
      });

      t('flags: add, remove, replace, MODSEQ and CONDSTORE unchangedSince', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        for (let i = 0; i < 3; i++) await store.messages.append(inbox.id, { content: message(`f${i}`) }, T0);
        const all = [{ from: 1, to: Number.MAX_SAFE_INTEGER }];
        const r1 = await store.messages.setFlags(inbox.id, [{ from: 1, to: 2 }], 'add', ['\\Seen', '$Label1']);
        assert.deepEqual(r1.updated.map((u) => [u.uid, u.flags]), [[1, ['$Label1', '\\Seen']], [2, ['$Label1', '\\Seen']]]);
        assert.ok(r1.updated[0]!.modseq !== r1.updated[1]!.modseq);
        const noop = await store.messages.setFlags(inbox.id, [{ from: 1, to: 1 }], 'add', ['\\Seen']);
        assert.equal(noop.updated.length, 0, 'unchanged flags do not get a new modseq');
        const r2 = await store.messages.setFlags(inbox.id, all, 'remove', ['$label1']);
        assert.deepEqual(r2.updated.map((u) => [u.uid, u.flags]), [[1, ['\\Seen']], [2, ['\\Seen']]]);
        const msgs = await store.messages.list(inbox.id);
        const ms1 = msgs[0]!.modseq;
        const ms3 = msgs[2]!.modseq;
        const r3 = await store.messages.setFlags(inbox.id, all, 'replace', ['\\Flagged'], { unchangedSince: ms3 });
        assert.deepEqual(r3.modified.sort(), [1, 2], 'messages changed after unchangedSince are reported, not changed');
        assert.deepEqual(r3.updated.map((u) => u.uid), [3]);
        assert.ok(ms1 > ms3);
        const mb = await store.mailboxes.getById(inbox.id);
        assert.equal(mb?.unseen, 1);
        assert.equal(mb?.highestModseq, r3.updated[0]!.modseq);
      });

      t('expunge removes only \\Deleted messages and feeds the change log', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        for (let i = 0; i < 4; i++) await store.messages.append(inbox.id, { content: message(`e${i}`) }, T0);
        const base = (await store.mailboxes.getById(inbox.id))!.highestModseq;
        await store.messages.setFlags(inbox.id, [{ from: 1, to: 1 }, { from: 3, to: 4 }], 'add', ['\\Deleted']);
        assert.deepEqual(await store.messages.expunge(inbox.id, [{ from: 1, to: 3 }]), [1, 3]);
        assert.deepEqual((await store.messages.list(inbox.id)).map((m) => m.uid), [2, 4]);
        assert.deepEqual(await store.messages.expunge(inbox.id), [4]);
        const changes = await store.changes.since(inbox.id, base);
        const expunged = changes.filter((c) => c.kind === 'expunge').map((c) => c.uid).sort();
        assert.deepEqual(expunged, [1, 3, 4]);
        for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.modseq > changes[i - 1]!.modseq, 'changes in modseq order');
        const mb = await store.mailboxes.getById(inbox.id);
        assert.equal(mb?.messages, 1);
        assert.equal(mb?.uidNext, 5, 'UIDs are never reused');
      });

      t('copy and move keep flags, allocate destination UIDs and update both mailboxes', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        const archive = await store.mailboxes.create(account.id, 'Archive');
        for (let i = 0; i < 3; i++) await store.messages.append(inbox.id, { content: message(`c${i}`), flags: i === 0 ? ['\\Seen'] : [] }, T0);
        const c = await store.messages.copy(inbox.id, [{ from: 1, to: 2 }], archive.id, T0);
        assert.equal(c.uidValidity, archive.uidValidity);
        assert.deepEqual(c.uids, [[1, 1], [2, 2]]);
        const m = await store.messages.move(inbox.id, [{ from: 2, to: 3 }], archive.id, T0);
        assert.deepEqual(m.uids, [[2, 3], [3, 4]]);
        assert.deepEqual((await store.messages.list(inbox.id)).map((x) => x.uid), [1]);
        const arch = await store.messages.list(archive.id);
        assert.deepEqual(arch.map((x) => [x.uid, x.flags]), [[1, ['\\Seen']], [2, []], [3, []], [4, []]]);
        assert.deepEqual(await store.messages.content(archive.id, 3), message('c1'));
        const inboxChanges = await store.changes.since(inbox.id, 0);
        assert.deepEqual(inboxChanges.filter((x) => x.kind === 'expunge').map((x) => x.uid).sort(), [2, 3]);
        assert.equal((await store.messages.quota(account.id)).messages, 5);
      });

      t('structures: stored with the message, null without one, carried by copy and move', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        const archive = await store.mailboxes.create(account.id, 'Archive');
        const big = JSON.stringify({ version: 1, pad: 'x'.repeat(200_000) });
        await store.messages.append(inbox.id, { content: message('s1'), structure: '{"version":1,"n":1}' }, T0);
        await store.messages.append(inbox.id, { content: message('s2') }, T0);
        await store.messages.append(inbox.id, { content: message('s3', ' big'), structure: big, idempotencyKey: 'k3' }, T0);
        const dup = await store.messages.append(inbox.id, { content: message('s3', ' big'), structure: 'ignored', idempotencyKey: 'k3' }, T0);
        assert.equal(dup.duplicate, true);
        assert.deepEqual(await store.messages.structures(inbox.id), [
          { uid: 1, structure: '{"version":1,"n":1}' },
          { uid: 2, structure: null },
          { uid: 3, structure: big },
        ]);
        assert.deepEqual(await store.messages.structures(inbox.id, [{ from: 3, to: 9 }, { from: 1, to: 1 }]), [
          { uid: 1, structure: '{"version":1,"n":1}' },
          { uid: 3, structure: big },
        ]);
        assert.deepEqual(await store.messages.structures(inbox.id, []), []);
        assert.deepEqual(await store.messages.structures(999_999), []);
        await store.messages.copy(inbox.id, [{ from: 1, to: 2 }], archive.id, T0);
        await store.messages.move(inbox.id, [{ from: 3, to: 3 }], archive.id, T0);
        assert.deepEqual(await store.messages.structures(archive.id), [
          { uid: 1, structure: '{"version":1,"n":1}' },
          { uid: 2, structure: null },
          { uid: 3, structure: big },
        ]);
        assert.deepEqual((await store.messages.structures(inbox.id)).map((x) => x.uid), [1, 2]);
        // a blob shared by reference gets the structure of its own append
        const { blobId } = await store.queue.commit({ sender: 'a@example.test', recipients: [{ address: 'alice@example.test' }], content: message('q') }, T0);
        const r = await store.messages.append(archive.id, { blobId, structure: '{"version":1,"q":1}' }, T0);
        assert.deepEqual(await store.messages.structures(archive.id, [{ from: r.uid, to: r.uid }]), [{ uid: r.uid, structure: '{"version":1,"q":1}' }]);
      });

      t('quota is enforced on append and copy', async ({ store }) => {
        const content = message('q'.repeat(100));
        const { account, inbox } = await setupAccount(store, 'q@example.test', content.length * 2);
        await store.messages.append(inbox.id, { content }, T0);
        await store.messages.append(inbox.id, { content: message('r'.repeat(100)) }, T0);
        await rejectsKind(store.messages.append(inbox.id, { content: message('s'.repeat(100)) }, T0), 'over_quota');
        const other = await store.mailboxes.create(account.id, 'Other');
        await rejectsKind(store.messages.copy(inbox.id, [{ from: 1, to: 1 }], other.id, T0), 'over_quota');
        const q = await store.messages.quota(account.id);
        assert.deepEqual(q, { bytes: content.length * 2, messages: 2, limitBytes: content.length * 2 });
      });

      t('queue blob shared with mailbox copies; references dropped on delete', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        const content = message('shared');
        const { id, blobId } = await store.queue.commit({ sender: 's@x.test', recipients: [{ address: 'alice@example.test' }], content }, T0);
        await store.messages.append(inbox.id, { blobId, idempotencyKey: `${id}:alice@example.test` }, T0);
        const folder = await store.mailboxes.create(account.id, 'Folder');
        await store.messages.append(folder.id, { blobId }, T0);
        assert.equal(await store.blobs.refs(blobId), 3);
        await rejectsKind(store.messages.append(inbox.id, { blobId: '0'.repeat(64) }, T0), 'not_found');
        const [l] = await store.queue.lease({ owner: 'n', limit: 1, leaseMs: 1000, now: T0 });
        await store.queue.complete(id, l!.token, [{ recipientId: l!.entry.recipients[0]!.id, outcome: 'done' }], T0);
        assert.equal(await store.blobs.refs(blobId), 2);
        await store.mailboxes.delete(account.id, 'Folder');
        assert.equal(await store.blobs.refs(blobId), 1);
        await store.directory.removeAccount(account.address);
        assert.equal(await store.blobs.refs(blobId), 0);
        assert.equal(await store.blobs.collect(Math.max(T0, Date.now()) + 1e9, 0), 1);
        assert.equal(await store.blobs.refs(blobId), null);
      });

      t('a message stored as its own prefix over a shared blob reads, copies, moves and migrates whole', async ({ store }) => {
        const { account, inbox } = await setupAccount(store);
        const small = message('prefixed');
        const big = Buffer.concat([message('prefixed big'), Buffer.alloc(200 * 1024, 'z')]); // a blob file
        const head = Buffer.from('Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\n');
        const uids: number[] = [];
        for (const content of [small, big]) {
          const { blobId } = await store.queue.commit({ sender: 's@x.test', recipients: [{ address: 'alice@example.test' }], content }, T0);
          uids.push((await store.messages.append(inbox.id, { blobId, prefix: head }, T0)).uid);
          assert.equal(await store.blobs.refs(blobId), 2);
        }
        const whole = [Buffer.concat([head, small]), Buffer.concat([head, big])];
        assert.deepEqual(await store.messages.content(inbox.id, uids[0]!), whole[0]);
        assert.deepEqual(await store.messages.content(inbox.id, uids[1]!), whole[1]);
        assert.deepEqual(await store.messages.contents(inbox.id, uids), whole);
        assert.deepEqual(await store.messages.contents(inbox.id, uids, 'scan'), whole);
        assert.deepEqual((await store.messages.list(inbox.id)).map((m) => m.size), whole.map((w) => w.length));
        assert.equal((await store.mailboxes.getById(inbox.id))!.size, whole[0]!.length + whole[1]!.length);
        await rejectsKind(store.messages.append(inbox.id, { content: small, prefix: head }, T0), 'invalid');

        const archive = await store.mailboxes.create(account.id, 'Archive');
        const copied = await store.messages.copy(inbox.id, [{ from: 1, to: uids[1]! }], archive.id, T0);
        assert.deepEqual(await store.messages.contents(archive.id, copied.uids.map((p) => p[1])), whole);
        const trash = await store.mailboxes.create(account.id, 'Trash');
        const moved = await store.messages.move(archive.id, [{ from: 1, to: 1_000 }], trash.id, T0);
        assert.deepEqual(await store.messages.contents(trash.id, moved.uids.map((p) => p[1])), whole);
        assert.equal((await store.mailboxes.getById(trash.id))!.size, whole[0]!.length + whole[1]!.length);

        const exported = await store.bulk.exportMessages(inbox.id, 0, 10);
        assert.deepEqual(exported.map((m) => m.prefix), [head, head]);
        await store.directory.addAccount({ address: 'copy@example.test', passwordHash: null });
        const other = (await store.directory.getAccount('copy@example.test'))!;
        const src = (await store.mailboxes.getById(inbox.id))!;
        const box = await store.bulk.importMailbox(other.id, {
          name: 'INBOX', specialUse: null, subscribed: true, uidValidity: src.uidValidity, uidNext: src.uidNext, highestModseq: src.highestModseq, expunged: [],
        });
        const rows = await Promise.all(exported.map(async (m) => ({ ...m, content: await store.messages.content(inbox.id, m.uid) })));
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...rows[0]!, prefix: Buffer.from('X-Other: y\r\n') }]), 'invalid');
        await store.bulk.importMessages(box.id, rows);
        assert.deepEqual(await store.messages.contents(box.id, uids), whole);
        assert.deepEqual(await store.bulk.exportMessages(box.id, 0, 10), exported);
        assert.equal((await store.mailboxes.getById(box.id))!.size, src.size);
      });
    });

    describe('change feed and blobs', () => {
      t('since() reports appends, flag changes and expunges; subscribe() wakes within a second', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        const signals: number[] = [];
        const woke = new Promise<void>((resolve) => {
          const off = store.changes.subscribe(inbox.id, (s) => {
            assert.equal(s.mailboxId, inbox.id);
            signals.push(s.highestModseq);
            off();
            resolve();
          });
        });
        // give a LISTEN connection time to be ready before the write
        await new Promise((r) => setTimeout(r, 100));
        const a = await store.messages.append(inbox.id, { content: message('feed') }, T0);
        const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no signal within 1s')), 1000).unref());
        await Promise.race([woke, timeout]);
        assert.ok(signals[0]! >= a.modseq);
        await store.messages.append(inbox.id, { content: message('feed2') }, T0);
        const f = await store.messages.setFlags(inbox.id, [{ from: 1, to: 1 }], 'add', ['\\Seen']);
        const changes = await store.changes.since(inbox.id, a.modseq);
        assert.deepEqual(changes.map((c) => c.kind), ['append', 'flags']);
        const last = changes[1]!;
        assert.equal(last.modseq, f.updated[0]!.modseq);
        assert.ok(last.kind === 'flags' && last.flags.includes('\\Seen'));
        assert.deepEqual(await store.changes.since(inbox.id, last.modseq), []);
      });

      t('blobs: put is idempotent, get verifies, collect removes unreferenced', async (h) => {
        const { store } = h;
        const content = randomBytes(5000);
        const p1 = await store.blobs.put(content);
        const p2 = await store.blobs.put(content);
        assert.equal(p1.id, p2.id);
        assert.equal(p1.size, 5000);
        assert.deepEqual(await store.blobs.get(p1.id), content);
        assert.equal(await store.blobs.refs(p1.id), 0);
        assert.equal(await store.blobs.collect(T0, 60_000_000_000_000), 0, 'grace period protects new blobs');
        await rejectsKind(store.blobs.get('f'.repeat(64)), 'not_found');
        if (h.corruptBlob) {
          await h.corruptBlob(p1.id);
          await rejectsKind(store.blobs.get(p1.id), 'corrupt');
        }
        assert.equal(await store.blobs.collect(Math.max(T0, Date.now()) + 1e9, 0), 1);
        await rejectsKind(store.blobs.get(p1.id), 'not_found');
      });

      t('corrupt message content is reported, not served', async (h) => {
        if (!h.corruptBlob) return;
        const { store } = h;
        const { inbox } = await setupAccount(store);
        const { id, blobId } = await store.queue.commit({ sender: '', recipients: [{ address: 'r@y.test' }], content: message('will rot') }, T0);
        await store.messages.append(inbox.id, { blobId }, T0);
        await h.corruptBlob(blobId);
        await rejectsKind(store.queue.content(id), 'corrupt');
        await rejectsKind(store.messages.content(inbox.id, 1), 'corrupt');
        await rejectsKind(store.messages.contents(inbox.id, [1]), 'corrupt');
      });

      t('migrate is idempotent and ping works', async ({ store }) => {
        assert.deepEqual(await store.migrate(), []);
        await store.ping();
      });
    });

    describe('bulk rows (store migrate)', () => {
      t('a mailbox copied with exportMessages/importMailbox/importMessages keeps UIDs, MODSEQs, flags, keys and expunges', async ({ store }) => {
        const { inbox } = await setupAccount(store);
        const big = Buffer.concat([message('big'), Buffer.alloc(200 * 1024, 'x')]);
        await store.messages.append(inbox.id, { content: message('one'), flags: ['\\Seen'], internalDate: T0 - 5000, structure: 'S1' }, T0);
        await store.messages.append(inbox.id, { content: message('two'), idempotencyKey: 'Q1:alice@example.test' }, T0);
        await store.messages.append(inbox.id, { content: message('three'), flags: ['\\Deleted'] }, T0);
        await store.messages.append(inbox.id, { content: big, flags: ['$Label1'] }, T0);
        await store.messages.append(inbox.id, { content: message('one') }, T0);
        await store.messages.setFlags(inbox.id, [{ from: 2, to: 2 }], 'add', ['\\Flagged']);
        assert.deepEqual(await store.messages.expunge(inbox.id), [3]);
        const src = (await store.mailboxes.getById(inbox.id))!;
        const exported = await store.bulk.exportMessages(inbox.id, 0, 2);
        assert.deepEqual(exported.map((m) => m.uid), [1, 2]);
        assert.equal(exported[0]!.structure, 'S1');
        assert.equal(exported[1]!.idempotencyKey, 'Q1:alice@example.test');
        assert.ok(exported[1]!.modseq > exported[1]!.createdModseq, 'a flag change moved the MODSEQ');
        const rest = await store.bulk.exportMessages(inbox.id, 2, 100);
        assert.deepEqual(rest.map((m) => m.uid), [4, 5]);
        assert.deepEqual(await store.bulk.exportMessages(999_999, 0, 10), []);

        await store.directory.addAccount({ address: 'copy@example.test', passwordHash: null });
        const other = (await store.directory.getAccount('copy@example.test'))!;
        const expunged = (await store.changes.since(inbox.id, 0)).filter((c) => c.kind === 'expunge').map((c) => ({ uid: c.uid, modseq: c.modseq }));
        assert.equal(expunged.length, 1);
        const box = await store.bulk.importMailbox(other.id, {
          name: 'INBOX', specialUse: '\\Archive', subscribed: true, uidValidity: src.uidValidity, uidNext: src.uidNext, highestModseq: src.highestModseq, expunged,
        });
        assert.equal(box.uidValidity, src.uidValidity);
        const all = [...exported, ...rest];
        const withContent = await Promise.all(all.map(async (m) => ({ ...m, content: await store.messages.content(inbox.id, m.uid) })));
        await store.bulk.importMessages(box.id, withContent.slice(0, 3));
        await store.bulk.importMessages(box.id, withContent.slice(3));
        await store.bulk.importMessages(box.id, []);

        const copy = (await store.mailboxes.getById(box.id))!;
        for (const k of ['uidValidity', 'uidNext', 'highestModseq', 'messages', 'unseen', 'size'] as const) assert.equal(copy[k], src[k], k);
        assert.equal(copy.specialUse, '\\Archive');
        assert.equal(copy.subscribed, true);
        assert.deepEqual(await store.messages.list(box.id), await store.messages.list(inbox.id));
        assert.deepEqual(await store.messages.structures(box.id), await store.messages.structures(inbox.id));
        assert.deepEqual(await store.changes.since(box.id, 0), await store.changes.since(inbox.id, 0));
        assert.deepEqual(await store.changes.since(box.id, exported[1]!.createdModseq), await store.changes.since(inbox.id, exported[1]!.createdModseq));
        assert.deepEqual(await store.messages.content(box.id, 4), big);
        assert.deepEqual(await store.bulk.exportMessages(box.id, 0, 100), all);
        // the delivery key came along: the same delivery again is a duplicate of the copied message
        const again = await store.messages.append(box.id, { content: message('two'), idempotencyKey: 'Q1:alice@example.test' }, T0);
        assert.deepEqual([again.duplicate, again.uid, again.uidValidity], [true, 2, src.uidValidity]);
        // and new mail continues after the old UIDs and MODSEQs
        const next = await store.messages.append(box.id, { content: message('new') }, T0);
        assert.equal(next.uid, src.uidNext);
        assert.ok(next.modseq > src.highestModseq);
      });

      t('bulk imports refuse rows that do not fit or collide', async ({ store }) => {
        const { account } = await setupAccount(store);
        const base = { specialUse: null, subscribed: false, uidValidity: 7, uidNext: 10, highestModseq: 20, expunged: [{ uid: 3, modseq: 5 }] };
        await rejectsKind(store.bulk.importMailbox(999_999, { ...base, name: 'X' }), 'not_found');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'INBOX' }), 'exists');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: '' }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', uidValidity: 0 }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', uidValidity: 2 ** 32 }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', uidNext: 1.5 }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', expunged: [{ uid: 10, modseq: 1 }] }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', expunged: [{ uid: 2, modseq: 21 }] }), 'invalid');
        await rejectsKind(store.bulk.importMailbox(account.id, { ...base, name: 'X', expunged: [{ uid: 2, modseq: 1 }, { uid: 2, modseq: 2 }] }), 'invalid');
        const box = await store.bulk.importMailbox(account.id, { ...base, name: 'X' });
        const content = message('m');
        const { createHash } = await import('node:crypto');
        const m = { uid: 1, modseq: 4, createdModseq: 2, flags: [], internalDate: T0, size: content.length, blobId: createHash('sha256').update(content).digest('hex'), structure: null, idempotencyKey: null, content };
        await rejectsKind(store.bulk.importMessages(999_999, [m]), 'not_found');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, uid: 10 }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, uid: 0 }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, modseq: 21 }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, createdModseq: 5 }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, blobId: 'f'.repeat(64) }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, size: 1 }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, flags: ['bad flag'] }]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [m, m]), 'invalid');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, uid: 3 }]), 'exists');
        await store.bulk.importMessages(box.id, [{ ...m, idempotencyKey: 'k1' }]);
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, uid: 2 }, m]), 'exists');
        await rejectsKind(store.bulk.importMessages(box.id, [{ ...m, uid: 2, idempotencyKey: 'k1' }]), 'exists');
        // nothing of a refused batch stayed
        assert.deepEqual((await store.messages.list(box.id)).map((x) => x.uid), [1]);
        assert.equal((await store.mailboxes.getById(box.id))!.messages, 1);
        assert.equal(await store.blobs.refs(m.blobId), 1);
      });

      t('a queue entry imported under its id keeps recipients\' states and is leased and completed as usual', async ({ store }) => {
        const content = message('queued');
        const entry = {
          id: 'ABC123',
          sender: 'a@example.test',
          meta: { client: '192.0.2.1', helo: 'x', nested: { b: 1, a: [1, 2] } },
          receivedAt: T0 - 60_000,
          state: 'active' as const,
          dueAt: T0 - 1000,
          attempts: 3,
          recipients: [
            { address: 'r1@x.test', orcpt: 'rfc822;r1@x.test', notify: ['FAILURE'], state: 'done' as const, attempts: 1, lastError: null },
            { address: 'r2@y.test', orcpt: null, notify: null, state: 'pending' as const, attempts: 2, lastError: '451 try later' },
            { address: 'r3@z.test', orcpt: null, notify: [], state: 'failed' as const, attempts: 1, lastError: '550 no such user' },
          ],
        };
        await store.bulk.importQueueEntry(entry, content);
        await store.bulk.importQueueEntry({ ...entry, id: 'HELD1', state: 'held', dueAt: T0 - 1000 }, content);
        await rejectsKind(store.bulk.importQueueEntry(entry, content), 'exists');
        await rejectsKind(store.bulk.importQueueEntry({ ...entry, id: 'NEW1', recipients: [] }, content), 'invalid');
        await rejectsKind(store.bulk.importQueueEntry({ ...entry, id: 'NEW2', state: 'leased' as never }, content), 'invalid');
        await rejectsKind(store.bulk.importQueueEntry({ ...entry, id: 'bad id!' }, content), 'invalid');
        await rejectsKind(store.bulk.importQueueEntry({ ...entry, id: 'NEW3', recipients: [{ ...entry.recipients[0]!, state: 'gone' as never }] }, content), 'invalid');
        const got = (await store.queue.get('ABC123'))!;
        assert.equal(got.sender, entry.sender);
        assert.deepEqual(got.meta, entry.meta);
        assert.deepEqual([got.receivedAt, got.state, got.dueAt, got.attempts, got.leaseOwner, got.leaseExpiresAt, got.size], [entry.receivedAt, 'active', entry.dueAt, 3, null, null, content.length]);
        assert.deepEqual(got.recipients.map(({ id: _id, ...r }) => r), entry.recipients);
        assert.deepEqual(await store.queue.content('ABC123'), content);
        assert.equal(await store.blobs.refs(got.blobId), 2);
        assert.deepEqual(await store.queue.counts(T0), { active: 1, held: 1, leased: 0, due: 1 });
        const [lease] = await store.queue.lease({ owner: 'n1', limit: 10, leaseMs: 60_000, now: T0 });
        assert.equal(lease?.entry.id, 'ABC123');
        const pending = lease!.entry.recipients.find((r) => r.state === 'pending')!;
        assert.deepEqual(await store.queue.complete('ABC123', lease!.token, [{ recipientId: pending.id, outcome: 'done' }], T0), { pending: 0, removed: true });
        assert.equal(await store.blobs.refs(got.blobId), 1);
      });
    });
  });
}
