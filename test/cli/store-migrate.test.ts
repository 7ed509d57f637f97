/*
 * `cartero store migrate`: an embedded store with several users, flags, expunged UIDs (gaps), MIME
 * structures, delivery keys and queue entries in every state is copied into a fresh PostgreSQL database;
 * the copy must keep UIDVALIDITY, UIDs, MODSEQs and flags (IMAP caches stay valid) and the queue. Also the
 * refusals (live source, non-empty or pre-existing target, bad arguments) and that verification catches
 * a difference. Runs the command in-process (runStore), as main.ts would.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { reportError } from '../../src/cli/main.js';
import { runStore } from '../../src/cli/store.js';
import type { Io } from '../../src/cli/context.js';
import { copyStore, verifyCopy } from '../../src/store/copy.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);

function mail(subject: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@example.test\r\nTo: b@example.test\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${body}\r\n`);
}

interface Captured {
  io: Io;
  out: () => string;
  err: () => string;
}

function capture(): Captured {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readStdin: async () => '',
    readStdinBytes: async () => Buffer.alloc(0),
    env: {},
  };
  return { io, out: () => out, err: () => err };
}

/** Runs `cartero store ARGV` in-process with main.ts's error mapping; returns the exit code and output. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  let code: number;
  try {
    code = await runStore(argv, c.io);
  } catch (err) {
    code = reportError(err, c.io);
  }
  return { code, out: c.out(), err: c.err() };
}

const dir = mkdtempSync(join(tmpdir(), 'cartero-migrate-'));
const databases: TestDatabase[] = [];

function configFile(name: string, store: string): string {
  const file = join(dir, name);
  writeFileSync(file, `hostname: mx.example.test\nstore: ${store}\n`);
  return file;
}

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  if ('skipped' in db) throw new Error(db.skipped);
  databases.push(db);
  return db;
}

/** The source: what a single node accumulates, then the node stops. */
async function seed(store: Store): Promise<void> {
  const d = store.directory;
  await d.addDomain('example.test');
  await d.addDomain('other.test');
  const alice = await d.addAccount({ address: 'alice@example.test', passwordHash: '$scrypt$alice', quotaBytes: 10_000_000 });
  const bob = await d.addAccount({ address: 'bob@example.test', passwordHash: '$scrypt$bob' });
  const carol = await d.addAccount({ address: 'carol@other.test', passwordHash: null });
  await d.addAlias({ source: 'postmaster@example.test', targets: ['alice@example.test'] });
  await d.addAlias({ source: '@other.test', targets: ['carol@other.test', 'bob@example.test'] });

  const m = store.messages;
  const inbox = await store.mailboxes.create(alice.id, 'INBOX', { subscribed: true });
  for (let i = 1; i <= 12; i++) {
    await m.append(inbox.id, { content: mail(`alice ${i}`, 'x'.repeat(i * 10)), internalDate: T0 + i * 1000, structure: `structure-${i}`, idempotencyKey: `Q${i}:alice@example.test` }, T0);
  }
  await m.setFlags(inbox.id, [{ from: 1, to: 4 }], 'add', ['\\Seen']);
  await m.setFlags(inbox.id, [{ from: 3, to: 3 }], 'add', ['\\Flagged', '$Important']);
  await m.setFlags(inbox.id, [{ from: 5, to: 7 }, { from: 10, to: 10 }], 'add', ['\\Deleted']);
  await m.expunge(inbox.id); // UIDs 5, 6, 7 and 10 are gone: gaps that must stay gaps
  await m.append(inbox.id, { content: Buffer.concat([mail('large'), Buffer.alloc(300 * 1024, 'L')]) }, T0);
  const sent = await store.mailboxes.create(alice.id, 'Sent', { specialUse: '\\Sent', subscribed: true });
  await m.copy(inbox.id, [{ from: 1, to: 2 }], sent.id, T0);
  const archive = await store.mailboxes.create(alice.id, 'Archive/2025', { subscribed: false });
  await m.move(inbox.id, [{ from: 11, to: 11 }], archive.id, T0);
  await store.mailboxes.create(alice.id, 'Empty');

  const binbox = await store.mailboxes.create(bob.id, 'INBOX', { subscribed: true });
  await m.append(binbox.id, { content: mail('bob 1'), flags: ['\\Answered', 'Custom'] }, T0);
  await m.append(binbox.id, { content: mail('alice 1', 'x'.repeat(10)) }, T0); // same bytes as alice's: one blob shared
  await store.mailboxes.create(carol.id, 'INBOX');

  const q = store.queue;
  await q.commit({ sender: 'alice@example.test', recipients: [{ address: 'x@remote.test', notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;x@remote.test' }], content: mail('out 1'), meta: { client: '192.0.2.1', helo: 'ws1', auth: 'alice' } }, T0);
  await q.commit({ sender: '', recipients: [{ address: 'y@remote.test' }], content: mail('bounce'), hold: true }, T0 + 1);
  const deferred = await q.commit({ sender: 'bob@example.test', recipients: [{ address: 'a@one.test' }, { address: 'b@two.test' }, { address: 'c@three.test' }], content: mail('out 3') }, T0 + 2);
  const leases = await q.lease({ owner: 'mx1:42', limit: 10, leaseMs: 60_000, now: T0 + 10 });
  const lease = leases.find((l) => l.entry.id === deferred.id)!;
  const [r1, r2, r3] = lease.entry.recipients;
  await q.complete(deferred.id, lease.token, [
    { recipientId: r1!.id, outcome: 'done' },
    { recipientId: r2!.id, outcome: 'failed', reason: '550 5.1.1 no such user' },
    { recipientId: r3!.id, outcome: 'deferred', reason: '451 4.7.1 greylisted', retryAt: T0 + 600_000 },
  ], T0 + 20);
  // the entry that was being delivered when the node stopped: its lease is dropped by the copy
  await q.commit({ sender: 'carol@other.test', recipients: [{ address: 'z@remote.test' }], content: mail('in flight') }, T0 + 3);
  await q.lease({ owner: 'mx1:42', limit: 10, leaseMs: 3_600_000, now: T0 + 3 });
}

describe('cartero store migrate', () => {
  const sourcePath = join(dir, 'embedded');
  let oldYaml: string;

  before(async () => {
    const source = await openStore({ backend: 'embedded', path: sourcePath });
    try {
      await seed(source);
    } finally {
      await source.close();
    }
    oldYaml = configFile('old.yaml', `{ backend: embedded, path: ${JSON.stringify(sourcePath)} }`);
  });

  after(async () => {
    for (const db of databases) await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('copies everything into a fresh PostgreSQL database, keeps UIDs, and prints the config change', async () => {
    const db = await freshDatabase();
    const newYaml = configFile('new.yaml', `{ backend: postgres, url: ${JSON.stringify(db.url)} }`);
    const r = await cli(['migrate', '--from', oldYaml, '--to', newYaml]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /verified: every count and hash matches/);
    assert.match(r.out, /^ {4}store:\n {6}backend: postgres\n {6}url: postgres:\/\//m);
    assert.match(r.out, /messages +\d+/);
    assert.doesNotMatch(r.out, /MISMATCH/);

    const source = await openStore({ backend: 'embedded', path: sourcePath });
    const target = await openStore({ backend: 'postgres', url: db.url }, { migrate: false });
    try {
      const [sa, ta] = [await source.directory.listAccounts(), await target.directory.listAccounts()];
      assert.deepEqual(ta.map((a) => [a.address, a.passwordHash, a.quotaBytes]), sa.map((a) => [a.address, a.passwordHash, a.quotaBytes]));
      assert.equal(ta.length, 3);
      assert.deepEqual(await target.directory.listAliases(), await source.directory.listAliases());
      let boxes = 0;
      for (const a of sa) {
        const t = ta.find((x) => x.address === a.address)!;
        const sboxes = await source.mailboxes.list(a.id);
        const tboxes = await target.mailboxes.list(t.id);
        assert.deepEqual(tboxes.map(({ id: _i, accountId: _a, ...b }) => b), sboxes.map(({ id: _i, accountId: _a, ...b }) => b), a.address);
        for (let i = 0; i < sboxes.length; i++) {
          const [s, c] = [sboxes[i]!, tboxes[i]!];
          // what an IMAP client's cache is keyed by: UIDVALIDITY, UIDs, and per UID the flags and MODSEQ
          assert.equal(c.uidValidity, s.uidValidity);
          assert.deepEqual(await target.messages.list(c.id), await source.messages.list(s.id));
          assert.deepEqual(await target.messages.structures(c.id), await source.messages.structures(s.id));
          assert.deepEqual(await target.changes.since(c.id, 0), await source.changes.since(s.id, 0));
          boxes++;
        }
      }
      assert.equal(boxes, 6);
      const alice = ta.find((a) => a.address === 'alice@example.test')!;
      const inbox = (await target.mailboxes.get(alice.id, 'INBOX'))!;
      assert.deepEqual((await target.messages.list(inbox.id)).map((x) => x.uid), [1, 2, 3, 4, 8, 9, 12, 13]);
      assert.deepEqual((await target.messages.list(inbox.id, [{ from: 3, to: 3 }]))[0]!.flags, ['$Important', '\\Flagged', '\\Seen']);
      assert.equal((await target.messages.content(inbox.id, 13)).length, (await source.messages.content((await source.mailboxes.get(sa.find((a) => a.address === 'alice@example.test')!.id, 'INBOX'))!.id, 13)).length);
      // a delivery retried after the move is still recognised as done
      const dup = await target.messages.append(inbox.id, { content: mail('alice 2', 'x'.repeat(20)), idempotencyKey: 'Q2:alice@example.test' }, T0);
      assert.deepEqual([dup.duplicate, dup.uid, dup.uidValidity], [true, 2, inbox.uidValidity]);

      const [sq, tq] = [await source.queue.list(), await target.queue.list()];
      assert.equal(tq.length, 4);
      assert.deepEqual(tq.map((e) => e.id), sq.map((e) => e.id));
      for (const [i, e] of tq.entries()) {
        const s = sq[i]!;
        assert.deepEqual([e.sender, e.meta, e.blobId, e.state, e.receivedAt, e.attempts], [s.sender, s.meta, s.blobId, s.state, s.receivedAt, s.attempts]);
        assert.deepEqual(e.recipients.map(({ id: _id, ...x }) => x), s.recipients.map(({ id: _id, ...x }) => x));
        assert.equal(e.leaseOwner, null, 'leases are dropped');
        if (s.leaseExpiresAt === null) assert.equal(e.dueAt, s.dueAt);
        else assert.ok(e.dueAt <= Date.now(), 'an entry leased in the source is due at once');
        assert.deepEqual(await target.queue.content(e.id), await source.queue.content(e.id));
      }
      const greylisted = tq.find((e) => e.recipients.length === 3)!;
      assert.deepEqual(greylisted.recipients.map((x) => [x.state, x.lastError]), [['done', null], ['failed', '550 5.1.1 no such user'], ['pending', '451 4.7.1 greylisted']]);
      assert.equal(greylisted.dueAt, T0 + 600_000);
      // the copied queue works: the due entries are leased from the new store
      const due = await target.queue.lease({ owner: 'node-a', limit: 10, leaseMs: 60_000, now: Date.now() });
      assert.equal(due.length, 3, 'the held entry stays held');
    } finally {
      await target.close();
      await source.close();
    }

    // the same target again: it is not empty any more
    const again = await cli(['migrate', '--from', oldYaml, '--to', newYaml]);
    assert.equal(again.code, 1);
    assert.match(again.err, /target store is not empty/);
  });

  test('an empty target whose schema exists needs --force', async () => {
    const db = await freshDatabase();
    const prepared = await openStore({ backend: 'postgres', url: db.url });
    await prepared.close();
    const newYaml = configFile('forced.yaml', `{ backend: postgres, url: ${JSON.stringify(db.url)} }`);
    const refused = await cli(['migrate', '--from', oldYaml, '--to', newYaml]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /already has a Cartero schema.*--force/);
    const forced = await cli(['migrate', '--from', oldYaml, '--to', newYaml, '--force', '--json']);
    assert.equal(forced.code, 0, forced.err);
    const report = JSON.parse(forced.out) as { ok: boolean; copied: { messages: number; queueEntries: number; accounts: number }; config: { store: { backend: string; url: string } } };
    assert.equal(report.ok, true);
    assert.deepEqual([report.copied.accounts, report.copied.queueEntries], [3, 4]);
    assert.equal(report.config.store.backend, 'postgres');
  });

  test('a source that a live node serves is refused (stop the node first)', async () => {
    const source = await openStore({ backend: 'embedded', path: sourcePath });
    const node = await source.cluster.register({ name: 'mx1', hostname: 'mx1.example.test', pid: 4242, roles: ['smtp', 'delivery'], version: 'test', heartbeatMs: 60_000 }, Date.now());
    await source.close();
    const db = await freshDatabase();
    const newYaml = configFile('live.yaml', `{ backend: postgres, url: ${JSON.stringify(db.url)} }`);
    try {
      const r = await cli(['migrate', '--from', oldYaml, '--to', newYaml]);
      assert.equal(r.code, 1);
      assert.match(r.err, /node mx1 is serving the source store.*stop it first/);
      const target = await openStore({ backend: 'postgres', url: db.url });
      try {
        assert.deepEqual(await target.directory.listDomains(), [], 'nothing was copied');
      } finally {
        await target.close();
      }
    } finally {
      const s = await openStore({ backend: 'embedded', path: sourcePath });
      await s.cluster.deregister('mx1', node.incarnation);
      await s.close();
    }
  });

  test('bad arguments are usage errors (exit 2)', async () => {
    const missing = await cli(['migrate', '--from', oldYaml]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--to NEW.yaml are required/);
    const same = await cli(['migrate', '--from', oldYaml, '--to', oldYaml]);
    assert.equal(same.code, 2);
    assert.match(same.err, /name the same store/);
    const unknown = await cli(['migrate', '--from', oldYaml, '--to', oldYaml, '--bogus']);
    assert.equal(unknown.code, 2);
    const stray = await cli(['migrate', 'extra', '--from', oldYaml, '--to', oldYaml]);
    assert.equal(stray.code, 2);
    const badFile = await cli(['migrate', '--from', join(dir, 'nonexistent.yaml'), '--to', oldYaml]);
    assert.equal(badFile.code, 2);
    const badStore = configFile('bad.yaml', '{ backend: postgres, url: "mysql://x" }');
    assert.equal((await cli(['migrate', '--from', oldYaml, '--to', badStore])).code, 2);
    const none = await cli([]);
    assert.equal(none.code, 2);
  });

  test('verification reports a copy that differs from its source', async () => {
    const db = await freshDatabase();
    const source = await openStore({ backend: 'embedded', path: sourcePath });
    const target = await openStore({ backend: 'postgres', url: db.url });
    try {
      const now = Date.now();
      await copyStore(source, target, { clock: { now: () => now }, batchMessages: 3 });
      assert.deepEqual((await verifyCopy(source, target, { now })).mismatches, []);
      // a flag changed on one side, and mail that arrived in the source after the copy
      const alice = (await target.directory.getAccount('alice@example.test'))!;
      const tInbox = (await target.mailboxes.get(alice.id, 'INBOX'))!;
      await target.messages.setFlags(tInbox.id, [{ from: 1, to: 1 }], 'add', ['\\Answered']);
      const bob = (await source.directory.getAccount('bob@example.test'))!;
      await source.messages.append((await source.mailboxes.get(bob.id, 'INBOX'))!.id, { content: mail('late arrival') }, now);
      await source.queue.commit({ sender: '', recipients: [{ address: 'late@remote.test' }], content: mail('late queue') }, now);
      const report = await verifyCopy(source, target, { now });
      assert.equal(report.ok, false);
      assert.equal(report.mailboxes.find((m) => m.account === 'alice@example.test' && m.mailbox === 'INBOX')?.ok, false);
      assert.equal(report.mailboxes.find((m) => m.account === 'bob@example.test' && m.mailbox === 'INBOX')?.ok, false);
      assert.equal(report.mailboxes.find((m) => m.mailbox === 'Sent')?.ok, true);
      assert.equal(report.queue.ok, false);
      assert.ok(report.mismatches.some((l) => /alice@example.test\/INBOX: messages, flags/.test(l)), report.mismatches.join('\n'));
      assert.ok(report.mismatches.some((l) => /bob@example.test\/INBOX: 2 messages in the target, 3 in the source/.test(l)), report.mismatches.join('\n'));
      assert.ok(report.mismatches.some((l) => /queue entry \S+ is missing in the target/.test(l)), report.mismatches.join('\n'));
    } finally {
      await target.close();
      await source.close();
    }
  });
});
