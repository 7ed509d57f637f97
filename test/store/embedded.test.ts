import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { test } from 'node:test';
import { ASK_READER, InlineReader, MAX_INLINE_BATCH } from '../../src/store/backends/embedded/inline-reads.js';
import { MIGRATIONS } from '../../src/store/backends/embedded/migrations.js';
import { INLINE_BLOB_LIMIT } from '../../src/store/backends/embedded/store.js';
import { openStore } from '../../src/store/index.js';
import { isStoreError } from '../../src/store/errors.js';
import { runStoreContract, setupAccount } from './contract.js';

async function openFresh() {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-store-'));
  const store = await openStore({ backend: 'embedded', path: dir });
  const blobFile = (id: string) => join(dir, 'blobs', id.slice(0, 2), id);
  return {
    dir,
    store,
    blobFile,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
    /** large blobs are files; small ones live in the database row */
    async corruptBlob(id: string) {
      if (existsSync(blobFile(id))) return writeFile(blobFile(id), 'rotten bytes');
      const db = new Database(join(dir, 'cartero.sqlite'));
      try {
        db.prepare('UPDATE blobs SET content = ? WHERE id = ?').run(Buffer.from('rotten bytes'), id);
      } finally {
        db.close();
      }
    },
  };
}

runStoreContract('embedded', openFresh);

test('embedded: inline bytes are checked by their CRC-32, and rows from before it by their SHA-256 id', async () => {
  const h = await openFresh();
  try {
    const { inbox } = await setupAccount(h.store, 'crc@example.test');
    const content = Buffer.from('Subject: checked\r\n\r\nbody\r\n');
    const put = await h.store.blobs.put(content);
    await h.store.messages.append(inbox.id, { blobId: put.id }, Date.now());
    const db = new Database(join(h.dir, 'cartero.sqlite'));
    const row = () => db.prepare('SELECT crc32 FROM blobs WHERE id = ?').get(put.id) as { crc32: number | null };
    try {
      assert.equal(typeof row().crc32, 'number', 'stored with its CRC-32');
      // a row written before the column: no CRC, checked against the id
      db.prepare('UPDATE blobs SET crc32 = NULL WHERE id = ?').run(put.id);
      assert.deepEqual(await h.store.messages.content(inbox.id, 1), content);
      assert.deepEqual(await h.store.messages.contents(inbox.id, [1]), [content]);
      const flipped = Buffer.from(content);
      flipped[3] = flipped[3]! ^ 1;
      db.prepare('UPDATE blobs SET content = ? WHERE id = ?').run(flipped, put.id);
      await assert.rejects(h.store.messages.contents(inbox.id, [1]), (e) => isStoreError(e, 'corrupt'));
      // one bit flipped under a CRC-32 is caught too
      db.prepare('UPDATE blobs SET crc32 = ? WHERE id = ?').run(zlibCrc32(content), put.id);
      await assert.rejects(h.store.messages.content(inbox.id, 1), (e) => isStoreError(e, 'corrupt'));
      // FETCH's batch read does not read the id of a row with a CRC, and still names the message
      await assert.rejects(h.store.messages.contents(inbox.id, [1]), (e) => isStoreError(e, 'corrupt') && e.message.includes(`message ${inbox.id}/1`));
      // a mismatch found on the event loop's connection is left to the reader, which raises it: same error either way
      await assert.rejects(h.store.messages.contents(inbox.id, [1], 'scan'), (e) => isStoreError(e, 'corrupt') && e.message.includes(`message ${inbox.id}/1`));
      await assert.rejects(h.store.blobs.get(put.id), (e) => isStoreError(e, 'corrupt'));
      db.prepare('UPDATE blobs SET content = ? WHERE id = ?').run(content, put.id);
      assert.deepEqual(await h.store.blobs.get(put.id), content);
    } finally {
      db.close();
    }
  } finally {
    await h.cleanup();
  }
});

test('embedded: large blobs are durable files, verified on read and collected', async () => {
  const h = await openFresh();
  try {
    const big = randomBytes(INLINE_BLOB_LIMIT + 1000);
    const small = randomBytes(1000);
    const { id, blobId } = await h.store.queue.commit({ sender: '', recipients: [{ address: 'r@y.test' }], content: big }, Date.now());
    const smallBlob = await h.store.blobs.put(small);
    assert.ok(existsSync(h.blobFile(blobId)), 'large blob is a file');
    assert.ok(!existsSync(h.blobFile(smallBlob.id)), 'small blob is inline');
    assert.deepEqual(await h.store.queue.content(id), big);
    await h.store.queue.remove(id);
    assert.equal(await h.store.blobs.collect(Date.now() + 1e9, 0), 2);
    assert.ok(!existsSync(h.blobFile(blobId)), 'collected file is removed');
    const again = await h.store.queue.commit({ sender: '', recipients: [{ address: 'r@y.test' }], content: big }, Date.now());
    await h.corruptBlob(again.blobId);
    await assert.rejects(h.store.queue.content(again.id), (e) => isStoreError(e, 'corrupt'));
  } finally {
    await h.cleanup();
  }
});

test('embedded: stray files from a crash before commit are collected after the grace period', async () => {
  const h = await openFresh();
  try {
    const orphan = randomBytes(INLINE_BLOB_LIMIT + 1);
    const id = createHash('sha256').update(orphan).digest('hex');
    await writeFile(h.blobFile(id), orphan);
    await writeFile(join(h.dir, 'blobs', id.slice(0, 2), '.tmp-abandoned'), 'partial');
    assert.equal(await h.store.blobs.collect(Date.now() - 60_000, 0), 0, 'young files are left alone');
    assert.equal(await h.store.blobs.collect(Date.now() + 1e9, 0), 1);
    assert.ok(!existsSync(h.blobFile(id)));
    assert.ok(!existsSync(join(h.dir, 'blobs', id.slice(0, 2), '.tmp-abandoned')));
  } finally {
    await h.cleanup();
  }
});

/** Frames in the WAL (its size after a TRUNCATE checkpoint counts only what was written since). */
function walFrames(dir: string): number {
  const wal = join(dir, 'cartero.sqlite-wal');
  return existsSync(wal) ? Math.max(0, (statSync(wal).size - 32) / (4096 + 24)) : 0;
}

function truncateWal(dir: string): void {
  const db = new Database(join(dir, 'cartero.sqlite'));
  try {
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    assert.equal(row!.busy, 0, 'checkpoint not blocked');
  } finally {
    db.close();
  }
}

test('embedded: a new reference to a message does not write its bytes again', async () => {
  const h = await openFresh();
  try {
    const { account, inbox } = await setupAccount(h.store, 'refs@example.test');
    const archive = await h.store.mailboxes.create(account.id, 'Archive');
    // 64 KB, inline in its row: 16 or more overflow pages that a rewrite of the row would write again
    const content = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), randomBytes(64 * 1024)]);
    await h.store.messages.append(inbox.id, { content }, Date.now());
    // each step is one transaction that touches a few pages of rows and indexes, not the 64 KB
    truncateWal(h.dir);
    await h.store.messages.copy(inbox.id, [{ from: 1, to: 1 }], archive.id, Date.now());
    const copied = walFrames(h.dir);
    assert.ok(copied < 12, `a copy wrote ${copied} pages`);
    await h.store.messages.setFlags(inbox.id, [{ from: 1, to: 1 }], 'add', ['\\Deleted']);
    truncateWal(h.dir);
    await h.store.messages.expunge(inbox.id);
    const expunged = walFrames(h.dir);
    assert.ok(expunged < 12, `an expunge wrote ${expunged} pages`);
    assert.equal(await h.store.blobs.refs((await h.store.messages.list(archive.id))[0]!.blobId), 1);
    assert.deepEqual(await h.store.messages.content(archive.id, 1), content);
  } finally {
    await h.cleanup();
  }
});

test('embedded: migration 10 carries reference counts and ages over to blob_refs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-store-'));
  try {
    const db = new Database(join(dir, 'cartero.sqlite'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    MIGRATIONS.slice(0, 9).forEach((sql, i) => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, 0)').run(i + 1);
    });
    const kept = Buffer.from('Subject: kept\r\n\r\nx\r\n');
    const dead = Buffer.from('Subject: dead\r\n\r\ny\r\n');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const insert = db.prepare('INSERT INTO blobs (id, size, content, crc32, refcount, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    insert.run(sha(kept), kept.length, kept, zlibCrc32(kept), 2, 1000);
    insert.run(sha(dead), dead.length, dead, zlibCrc32(dead), 0, 1000);
    db.close();
    const store = await openStore({ backend: 'embedded', path: dir });
    try {
      assert.equal(await store.blobs.refs(sha(kept)), 2);
      assert.equal(await store.blobs.refs(sha(dead)), 0);
      assert.equal(await store.blobs.collect(2000, 0), 1);
      assert.equal(await store.blobs.refs(sha(dead)), null);
      assert.deepEqual(await store.blobs.get(sha(kept)), kept);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('embedded: a store path that cannot be created is reported as unavailable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-store-'));
  try {
    await writeFile(join(dir, 'file'), 'x');
    await assert.rejects(openStore({ backend: 'embedded', path: join(dir, 'file', 'sub') }), (e) => isStoreError(e, 'unavailable'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('embedded: key lookups answered on the event loop agree with the reader thread, and defer to it when they cannot answer', async () => {
  const s = await openFresh();
  try {
    await s.store.directory.addDomain('inline.test');
    const account = await s.store.directory.addAccount({ address: 'u@inline.test', passwordHash: null });
    await s.store.mailboxes.create(account.id, 'INBOX');
    const inline = InlineReader.open(join(s.dir, 'cartero.sqlite'));
    assert.ok(inline, 'opens on the store database');
    // mailboxes.list runs on the reader thread: the same row, as of the last commit
    const [fromReader] = await s.store.mailboxes.list(account.id);
    assert.deepEqual(inline.tryCall('mailboxes.get', [account.id, 'INBOX']), fromReader);
    assert.deepEqual(inline.tryCall('mailboxes.getById', [fromReader!.id]), fromReader);
    assert.deepEqual(inline.tryCall('directory.getAccount', ['u@inline.test']), await s.store.directory.getAccountById(account.id));
    assert.equal(inline.tryCall('mailboxes.get', [account.id, 'Nowhere']), null);
    // a commit is visible to the next lookup, with no wait
    const small = Buffer.from('Subject: x\r\n\r\nx\r\n');
    await s.store.messages.append(fromReader!.id, { content: small, flags: [] }, Date.now());
    assert.equal((inline.tryCall('mailboxes.get', [account.id, 'INBOX']) as { messages: number }).messages, 1);
    // message bytes for FETCH and RETR: inline rows as bytes, a blob file by its id, a gone message null
    const large = Buffer.alloc(INLINE_BLOB_LIMIT + 1000, 'y');
    const appended = await s.store.messages.append(fromReader!.id, { content: large, flags: [] }, Date.now());
    const read = inline.tryCall('messages.contentsOf', [fromReader!.id, [1, appended.uid, 99]]) as unknown[];
    assert.deepEqual(Buffer.from(read[0] as Uint8Array), small);
    assert.deepEqual(read[1], { file: (await s.store.messages.list(fromReader!.id))[1]!.blobId, prefix: null }, 'a blob file is named, read by the caller');
    assert.equal(read[2], null);
    // a list longer than a batch is the reader thread's, whatever the messages
    assert.equal(inline.tryCall('messages.contentsOf', [fromReader!.id, Array.from({ length: MAX_INLINE_BATCH + 1 }, (_, k) => k + 1)]), ASK_READER);
    for (const purpose of ['answer', 'scan'] as const) {
      assert.deepEqual(await s.store.messages.contents(fromReader!.id, [1, appended.uid, 99], purpose), [small, large, null], purpose);
    }
    // scans and writes are never answered here; nor is anything once the connection is gone
    assert.equal(inline.tryCall('mailboxes.list', [account.id]), ASK_READER);
    assert.equal(inline.tryCall('mailboxes.create', [account.id, 'X']), ASK_READER);
    inline.close();
    assert.equal(inline.tryCall('mailboxes.get', [account.id, 'INBOX']), ASK_READER);
    assert.equal(InlineReader.open(join(s.dir, 'missing.sqlite')), null);
  } finally {
    await s.cleanup();
  }
});

test('embedded: a batch read packs a range into one buffer, every byte value intact, and reads row by row where a row needs it', async () => {
  const h = await openFresh();
  try {
    const { inbox } = await setupAccount(h.store, 'packed@example.test');
    // every byte value, NULs and bytes that are not UTF-8 included, in the body and in a prefix
    const every = Buffer.from(Array.from({ length: 512 }, (_, k) => k % 256));
    const shared = await h.store.blobs.put(Buffer.concat([Buffer.from('Subject: bytes\r\n\r\n'), every, Buffer.from('\xc3\x28\xff\xfe\x00', 'latin1')]));
    const prefix = Buffer.concat([Buffer.from('Return-Path: <a@b>\r\nX-Raw: '), Buffer.from([0, 0xc0, 0x80, 0xff]), Buffer.from('\r\n')]);
    const plain = Buffer.from('Subject: plain\r\n\r\nplain\r\n');
    await h.store.messages.append(inbox.id, { content: plain, flags: [] }, Date.now()); // uid 1
    await h.store.messages.append(inbox.id, { blobId: shared.id, prefix }, Date.now()); // uid 2
    await h.store.messages.append(inbox.id, { blobId: shared.id }, Date.now()); // uid 3
    const sharedBytes = await h.store.blobs.get(shared.id);
    const want = [plain, Buffer.concat([prefix, sharedBytes]), sharedBytes];
    for (const purpose of ['answer', 'scan'] as const) {
      const got = await h.store.messages.contents(inbox.id, [3, 1, 2], purpose);
      assert.deepEqual(got.map((b) => Buffer.from(b!)), [want[2], want[0], want[1]], purpose);
      assert.equal(got[0]!.buffer, got[1]!.buffer, `${purpose}: one buffer for the range`);
    }
    // a row without a CRC (written before the column) sends its range through the row-by-row read
    const db = new Database(join(h.dir, 'cartero.sqlite'));
    try {
      db.prepare('UPDATE blobs SET crc32 = NULL WHERE id = ?').run(shared.id);
      for (const purpose of ['answer', 'scan'] as const) {
        const got = await h.store.messages.contents(inbox.id, [1, 2, 3], purpose);
        assert.deepEqual(got.map((b) => Buffer.from(b!)), want, purpose);
      }
      // one bit flipped in one message of a packed range names that message
      db.prepare('UPDATE blobs SET crc32 = ? WHERE id = ?').run(zlibCrc32(sharedBytes), shared.id);
      const flipped = Buffer.from(sharedBytes);
      flipped[40] = flipped[40]! ^ 1;
      db.prepare('UPDATE blobs SET content = ? WHERE id = ?').run(flipped, shared.id);
      for (const purpose of ['answer', 'scan'] as const) {
        await assert.rejects(h.store.messages.contents(inbox.id, [1, 2, 3], purpose), (e) => isStoreError(e, 'corrupt') && e.message.includes(`message ${inbox.id}/2`), purpose);
      }
      assert.deepEqual(Buffer.from((await h.store.messages.contents(inbox.id, [1]))[0]!), plain, 'the other messages read as before');
    } finally {
      db.close();
    }
  } finally {
    await h.cleanup();
  }
});
