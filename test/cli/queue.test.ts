import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore, type Store } from '../../src/store/index.js';
import { tempConfig, type TempConfig } from './helpers.js';
import { runCmd } from './queue-helpers.js';

interface View {
  id: string;
  state: string;
  leased: boolean;
  sender: string;
  nextAttempt: string;
  recipients: { address: string; lastError: string | null }[];
}

const msg = (subject: string): Buffer => Buffer.from(`From: a@sender.test\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`);

describe('cartero queue', () => {
  let t: TempConfig;
  const c = (): string[] => ['-c', t.file];
  const ids: Record<'deferred' | 'bounce' | 'multi', string> = { deferred: '', bounce: '', multi: '' };

  async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  const list = async (...extra: string[]): Promise<View[]> => {
    const r = await runCmd(['queue', 'list', '--json', ...extra, ...c()]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as View[];
  };

  before(async () => {
    t = tempConfig('domains: [example.test]\n');
    await withStore(async (s) => {
      const now = Date.now();
      ids.deferred = (await s.queue.commit({ sender: 'alice@sender.test', recipients: [{ address: 'bob@remote.test' }], content: msg('one') }, now - 3000)).id;
      ids.bounce = (await s.queue.commit({ sender: '', recipients: [{ address: 'carol@remote.test' }], content: msg('two') }, now - 2000)).id;
      ids.multi = (await s.queue.commit({ sender: 'x@y.test', recipients: [{ address: 'd@remote.test' }, { address: 'e@other.test' }], content: msg('three') }, now - 1000)).id;
      const [lease] = await s.queue.lease({ owner: 'test', limit: 1, leaseMs: 60_000, now });
      assert.equal(lease?.entry.id, ids.deferred);
      const rid = lease.entry.recipients[0]!.id;
      await s.queue.complete(ids.deferred, lease.token, [{ recipientId: rid, outcome: 'deferred', reason: '451 4.4.1 connect to mx.remote.test: Connection refused', retryAt: now + 3_600_000 }], now);
    });
  });
  after(() => t.cleanup());

  test('list: postqueue -p format, reasons in parentheses, MAILER-DAEMON, summary line', async () => {
    const r = await runCmd(['queue', 'list', ...c()]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0] ?? '', /^-Queue ID-\s+--Size-- ----Arrival Time--- -Sender\/Recipient-------$/);
    const at = lines.findIndex((l) => l.startsWith(ids.deferred));
    assert.match(lines[at] ?? '', new RegExp(`^${ids.deferred}  +\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d  alice@sender\\.test$`));
    assert.match(lines[at + 1] ?? '', /^ +\(451 4\.4\.1 connect to mx\.remote\.test: Connection refused\)$/);
    assert.match(lines[at + 2] ?? '', /^ +bob@remote\.test$/);
    assert.match(r.stdout, new RegExp(`${ids.bounce} .* MAILER-DAEMON\\n +carol@remote\\.test\\n`));
    assert.match(r.stdout, /\n-- 1 Kbytes in 3 Requests\.\n$/);
  });

  test('list --json and selections by domain, sender, reason', async () => {
    const all = await list();
    assert.deepEqual(all.map((v) => v.id), [ids.deferred, ids.bounce, ids.multi]);
    assert.equal(all[0]?.recipients[0]?.lastError, '451 4.4.1 connect to mx.remote.test: Connection refused');
    assert.deepEqual((await list('--domain', 'other.test')).map((v) => v.id), [ids.multi]);
    assert.deepEqual((await list('--sender', '<>')).map((v) => v.id), [ids.bounce]);
    assert.deepEqual((await list('--reason', 'CONNECTION refused')).map((v) => v.id), [ids.deferred]);
  });

  test('hold shows "!", release makes it active and due now', async () => {
    const h = await runCmd(['queue', 'hold', ids.multi, ...c()]);
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, `${ids.multi}: held\nheld 1 message\n`);
    const text = (await runCmd(['queue', 'list', ...c()])).stdout;
    assert.match(text, new RegExp(`^${ids.multi}! `, 'm'));
    const held = (await list()).find((v) => v.id === ids.multi);
    assert.equal(held?.state, 'held');
    const rel = await runCmd(['queue', 'release', ids.multi, '--json', ...c()]);
    assert.deepEqual(JSON.parse(rel.stdout), { released: [ids.multi], gone: [] });
    assert.equal((await list()).find((v) => v.id === ids.multi)?.state, 'active');
  });

  test('flush makes a deferred entry due now; requeue by id does the same', async () => {
    const dueBefore = await withStore(async (s) => (await s.queue.get(ids.deferred))?.dueAt ?? 0);
    assert.ok(dueBefore > Date.now() + 3_000_000);
    const f = await runCmd(['queue', 'flush', ...c()]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, 'flushed 3 messages\n');
    assert.ok((await withStore(async (s) => (await s.queue.get(ids.deferred))?.dueAt ?? Infinity)) <= Date.now());
    const byDomain = await runCmd(['queue', 'flush', 'other.test', '--json', ...c()]);
    assert.deepEqual(JSON.parse(byDomain.stdout), { flushed: [ids.multi] });
    const rq = await runCmd(['queue', 'requeue', ids.deferred, ...c()]);
    assert.equal(rq.stdout, `${ids.deferred}: requeued\nrequeued 1 message\n`);
  });

  test('a leased entry shows "*"', async () => {
    await withStore((s) => s.queue.lease({ owner: 'node-a:1', limit: 1, leaseMs: 600_000, now: Date.now() }));
    const text = (await runCmd(['queue', 'list', ...c()])).stdout;
    assert.match(text, /^\w+\* /m);
    assert.equal((await list()).filter((v) => v.leased).length, 1);
  });

  test('show: envelope, recipients, meta and --content; an unknown id exits 1', async () => {
    const r = await runCmd(['queue', 'show', ids.multi, '--content', ...c()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^queue id: +${ids.multi}\\nstate: +active\\n`));
    assert.match(r.stdout, /sender: +<x@y\.test>/);
    assert.match(r.stdout, /RECIPIENT +STATE +ATTEMPTS +NOTIFY +LAST ERROR\nd@remote\.test +pending +0 +- +-\ne@other\.test +pending/);
    assert.match(r.stdout, /\nSubject: three\r\n\r\nbody of three\r\n$/);
    const j = await runCmd(['queue', 'show', ids.deferred, '--json', ...c()]);
    const v = JSON.parse(j.stdout) as View & { meta: unknown; content?: string };
    assert.equal(v.recipients[0]?.lastError, '451 4.4.1 connect to mx.remote.test: Connection refused');
    assert.deepEqual(v.meta, {});
    assert.equal(v.content, undefined);
    const nope = await runCmd(['queue', 'show', 'NOSUCHID', ...c()]);
    assert.deepEqual([nope.code, nope.stderr], [1, 'cartero: queue id NOSUCHID not found\n']);
  });

  test('delete: needs a selection; by id; by sender; ALL empties the queue', async () => {
    const none = await runCmd(['queue', 'delete', ...c()]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /name the entries/);
    const mixed = await runCmd(['queue', 'delete', 'ALL', '--sender', 'x@y.test', ...c()]);
    assert.equal(mixed.code, 2);
    const missing = await runCmd(['queue', 'delete', 'NOSUCHID', ...c()]);
    assert.equal(missing.code, 1);
    assert.equal((await list()).length, 3, 'nothing deleted by the refused commands');
    const one = await runCmd(['queue', 'delete', ids.bounce, ...c()]);
    assert.equal(one.stdout, `${ids.bounce}: deleted\ndeleted 1 message\n`);
    const bySender = await runCmd(['queue', 'delete', '--sender', 'X@Y.test', '--json', ...c()]);
    assert.deepEqual(JSON.parse(bySender.stdout), { deleted: [ids.multi], gone: [] });
    const all = await runCmd(['queue', 'delete', 'ALL', ...c()]);
    assert.equal(all.stdout, `${ids.deferred}: deleted\ndeleted 1 message\n`);
    assert.equal((await runCmd(['queue', 'list', ...c()])).stdout, 'Mail queue is empty\n');
    assert.deepEqual(await list(), []);
  });

  test('usage: --help, unknown subcommand', async () => {
    const help = await runCmd(['queue', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /cartero queue list/);
    const bad = await runCmd(['queue', 'frobnicate', ...c()]);
    assert.equal(bad.code, 2);
  });
});
