/*
 * Commit-time routing on a real embedded store: canonical maps and masquerading on the envelope and
 * headers, virtual alias maps feeding the same expansion as the directory, what is recorded in the
 * queue entry's meta and in the commit log line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import { LocalDomains } from '../policy/domains.js';
import { createCommit, type CommitFn, type CommitOptions } from '../queue/commit.js';
import { captureLogger, ManualClock, openTestStore, type TestStore } from '../queue/testing.js';
import type { EnvelopeRecipient } from '../smtp/services.js';
import type { QueueEntry } from '../store/index.js';
import type { LookupMap } from './maps.js';
import { buildRewriter, buildVirtual, headerRewritePolicy, openRoutingMaps } from './open.js';
import { routingSettingsSchema, type RoutingSettingsInput } from './settings.js';

let t: TestStore;
let domains: LocalDomains;
const clock = new ManualClock();
const { logger, lines } = captureLogger();

before(async () => {
  t = await openTestStore('cartero-routing-');
  await t.store.directory.addDomain('example.test');
  for (const a of ['bob@example.test', 'carol@example.test', 'dave@example.test']) await provisionAccount(t.store, a, null);
  await t.store.directory.addAlias({ source: 'list@example.test', targets: ['bob@example.test', 'carol@example.test'] });
  await t.store.directory.addAlias({ source: 'loop-x@example.test', targets: ['va@example.test'] });
  domains = new LocalDomains({ store: t.store, domains: ['example.test'], relayDomains: [], cacheMs: 0, clock });
});
after(() => t.cleanup());

async function pipeline(input: RoutingSettingsInput, extra: Partial<CommitOptions> = {}): Promise<CommitFn> {
  const settings = routingSettingsSchema.parse(input);
  const maps = await openRoutingMaps(settings, { baseDir: '/', logger });
  const ctx = { isLocal: (d: string) => domains.isLocal(d), delimiters: '+', hostname: 'mx.example.test', logger };
  const rewriter = buildRewriter(settings, maps, ctx);
  return createCommit({
    store: t.store,
    domains,
    delimiters: '+',
    recursionLimit: 5,
    expansionLimit: 100,
    clock,
    logger,
    virtual: buildVirtual(settings, maps, ctx),
    rewriting: rewriter ? { rewriter, headersFor: headerRewritePolicy(settings.local_header_rewrite_clients, (ip) => ip.startsWith('10.')) } : null,
    ...extra,
  });
}

const MESSAGE = 'From: Alice <alice@ws1.sub.corp.test>\r\nTo: "List" <list@example.test>, info@virt.test\r\nSubject: s\r\n\r\nFrom: alice@ws1.sub.corp.test\r\n';

async function commit(c: CommitFn, recipients: (string | EnvelopeRecipient)[], o: { sender?: string; client?: string; content?: string } = {}): Promise<QueueEntry> {
  const rcpts = recipients.map((r) => (typeof r === 'string' ? { address: r } : r));
  const { queueId } = await c({ sender: o.sender ?? 'alice@ws1.sub.corp.test', recipients: rcpts, meta: { client: o.client ?? '10.0.0.5' } }, Buffer.from(o.content ?? MESSAGE));
  clock.advance(1);
  const entry = await t.store.queue.get(queueId);
  assert.ok(entry);
  return entry;
}

const addresses = (e: QueueEntry) => e.recipients.map((r) => r.address);
const undeliverable = (e: QueueEntry) => (e.meta.undeliverable ?? {}) as Record<string, string>;

describe('virtual alias maps at commit', () => {
  let c: CommitFn;
  before(async () => {
    c = await pipeline({
      virtual_alias_maps: [
        {
          'info@virt.test': ['list@example.test', 'ext@remote.test'],
          '@depart.test': '%1@mail-server1.test',
          'carol@example.test': 'carol@example.test, archive@remote.test',
          'va@example.test': 'loop-x@example.test',
          '@a.test': '%1@b.test',
          '@b.test': '%1@a.test',
          'gone@example.test': 'error:5.1.1 moved away, write to dave@example.test',
          'd0@virt.test': 'd1@virt.test',
          'd1@virt.test': 'd2@virt.test',
          'd2@virt.test': 'd3@virt.test',
          'd3@virt.test': 'd4@virt.test',
          'd4@virt.test': 'd5@virt.test',
          'd5@virt.test': 'd6@virt.test',
        },
        { 'info@virt.test': 'shadowed@remote.test', 'second@virt.test': 'dave@example.test' },
      ],
    });
  });

  test('virtual first, then the directory; ORCPT and meta.expanded keep the original', async () => {
    const e = await commit(c, ['info@virt.test', 'second@virt.test']);
    assert.deepEqual(addresses(e), ['bob@example.test', 'carol@example.test', 'archive@remote.test', 'ext@remote.test', 'dave@example.test']);
    assert.equal(e.recipients[0]?.orcpt, 'rfc822;info@virt.test');
    assert.deepEqual(e.meta.expanded, {
      'info@virt.test': ['bob@example.test', 'carol@example.test', 'archive@remote.test', 'ext@remote.test'],
      'second@virt.test': ['dave@example.test'],
    });
    const line = lines.find((l) => l.queue_id === e.id && 'nrcpt' in l);
    assert.deepEqual(line?.expanded, e.meta.expanded);
  });

  test('virtusertable catch-all with %1 and a self-reference that keeps a copy', async () => {
    const e = await commit(c, ['Bob+x@depart.test', 'carol@example.test']);
    assert.deepEqual(addresses(e), ['Bob@mail-server1.test', 'carol@example.test', 'archive@remote.test']);
    assert.deepEqual(undeliverable(e), {});
  });

  test('loops through virtual maps and the directory fail with the loop shown', async () => {
    const e = await commit(c, ['va@example.test', 'u@a.test', 'bob@example.test']);
    assert.deepEqual(undeliverable(e), {
      'va@example.test': '554 5.4.6 <va@example.test>: mail forwarding loop (va@example.test -> loop-x@example.test -> va@example.test)',
      'u@a.test': '554 5.4.6 <u@a.test>: mail forwarding loop (u@a.test -> u@b.test -> u@a.test)',
    });
    assert.ok(addresses(e).includes('bob@example.test'));
  });

  test('error: targets and the depth limit', async () => {
    const e = await commit(c, ['gone@example.test', 'd0@virt.test']);
    assert.deepEqual(undeliverable(e), {
      'gone@example.test': '550 5.1.1 <gone@example.test>: moved away, write to dave@example.test',
      'd5@virt.test': '554 5.4.6 <d5@virt.test>: alias expansion deeper than 5 levels',
    });
  });

  test('a table failure fails the commit (451 at the session) and queues nothing', async () => {
    const failing: LookupMap = { name: 'broken', get: async () => Promise.reject(new Error('table unavailable')) };
    const c2 = await pipeline({}, { virtual: { maps: failing, delimiters: '+', isLocal: () => false, myorigin: 'x', propagateExtension: true } });
    const before = (await t.store.queue.list()).length;
    await assert.rejects(c2({ sender: 'a@b.test', recipients: [{ address: 'x@y.test' }], meta: {} }, Buffer.from(MESSAGE)), /table unavailable/);
    assert.equal((await t.store.queue.list()).length, before);
  });
});

describe('canonical maps and masquerading at commit', () => {
  let c: CommitFn;
  before(async () => {
    c = await pipeline({
      sender_canonical_maps: { 'alice@ws1.sub.corp.test': 'Alice.Smith@ws1.sub.corp.test' },
      recipient_canonical_maps: { 'old-list@example.test': 'list@example.test' },
      masquerade_domains: ['corp.test'],
      virtual_alias_maps: { 'info@virt.test': 'dave@example.test' },
    });
  });

  test('envelope sender, recipients (ORCPT = what the client gave), headers for a mynetworks client', async () => {
    const e = await commit(c, ['old-list@example.test']);
    assert.equal(e.sender, 'Alice.Smith@corp.test');
    assert.deepEqual(addresses(e), ['bob@example.test', 'carol@example.test']);
    assert.ok(e.recipients.every((r) => r.orcpt === 'rfc822;old-list@example.test'));
    assert.deepEqual(e.meta.expanded, { 'old-list@example.test': ['bob@example.test', 'carol@example.test'] });
    const content = (await t.store.queue.content(e.id)).toString();
    assert.equal(content, MESSAGE.replace('<alice@ws1.sub.corp.test>', '<Alice.Smith@corp.test>'));
    assert.deepEqual(e.meta.rewritten, {
      sender: { from: 'alice@ws1.sub.corp.test', to: 'Alice.Smith@corp.test' },
      recipients: { 'old-list@example.test': 'list@example.test' },
      headers: [{ field: 'From', from: 'alice@ws1.sub.corp.test', to: 'Alice.Smith@corp.test' }],
    });
    const line = lines.find((l) => l.queue_id === e.id && 'nrcpt' in l);
    assert.deepEqual(line?.rewritten, e.meta.rewritten);
    assert.equal(line?.msg, `${e.id}: from=<Alice.Smith@corp.test>, size=${e.size}, nrcpt=2 (queue active)`);
  });

  test('headers of mail from other clients are left alone (the envelope is still rewritten)', async () => {
    const e = await commit(c, ['dave@example.test'], { client: '192.0.2.7' });
    assert.equal(e.sender, 'Alice.Smith@corp.test');
    assert.equal((await t.store.queue.content(e.id)).toString(), MESSAGE);
    assert.equal((e.meta.rewritten as { headers?: unknown }).headers, undefined);
  });

  test('a client that authenticated gets header rewriting too; the null sender stays null', async () => {
    const { queueId } = await c(
      { sender: '', recipients: [{ address: 'dave@example.test' }], meta: { client: '192.0.2.7', auth_user: 'dave@example.test' } },
      Buffer.from(MESSAGE),
    );
    const e = await t.store.queue.get(queueId);
    assert.equal(e?.sender, '');
    assert.match((await t.store.queue.content(queueId)).toString(), /^From: Alice <Alice\.Smith@corp\.test>\r\n/);
  });

  test('nothing configured: content and envelope untouched, no meta.rewritten', async () => {
    const plain = await pipeline({});
    const e = await commit(plain, ['dave@example.test']);
    assert.equal(e.sender, 'alice@ws1.sub.corp.test');
    assert.equal(e.meta.rewritten, undefined);
    assert.equal((await t.store.queue.content(e.id)).toString(), MESSAGE);
  });

  test('headerRewritePolicy', () => {
    const mine = (ip: string) => ip === '10.0.0.1';
    const p = headerRewritePolicy(['permit_mynetworks'], mine);
    assert.equal(p({ client: '10.0.0.1' }), true);
    assert.equal(p({ client: '192.0.2.1', auth_user: 'x' }), false);
    assert.equal(p({}), true, 'no client: local submission');
    assert.equal(headerRewritePolicy(['static:all'], mine)({ client: '192.0.2.1' }), true);
    assert.equal(headerRewritePolicy([], mine)({ client: '10.0.0.1' }), false);
  });
});

test('inline tables refuse bad virtual values at open', async () => {
  await assert.rejects(pipeline({ virtual_alias_maps: { 'a@b.test': 'error:4.0.0 later' } }), /a@b\.test: "error:4\.0\.0 later"/);
});

test('virtual_alias_domains: an address there without an entry fails as unknown', async () => {
  const c = await pipeline({ virtual_alias_domains: ['only-virtual.test'], virtual_alias_maps: { 'sales@only-virtual.test': 'dave@example.test' } });
  const e = await commit(c, ['sales@only-virtual.test', 'nobody@only-virtual.test']);
  assert.deepEqual(addresses(e), ['dave@example.test', 'nobody@only-virtual.test']);
  assert.deepEqual(undeliverable(e), { 'nobody@only-virtual.test': '550 5.1.1 <nobody@only-virtual.test>: user unknown in virtual alias table' });
  const none = await pipeline({ virtual_alias_domains: ['only-virtual.test'] });
  const f = await commit(none, ['x@only-virtual.test']);
  assert.match(undeliverable(f)['x@only-virtual.test'] ?? '', /^550 5\.1\.1 .*virtual alias table/);
});
