/*
 * Crash safety: a child process writes in a loop and reports each acknowledged write; we SIGKILL it at
 * a random moment, reopen the store and check that every acknowledged message is present and whole, and
 * that no half-written message, dangling blob reference or broken counter is visible. Three kills per
 * backend, each on the data the previous rounds left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import type { Store } from '../../src/store/api.js';
import { openStore, type StoreConfig } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

const ROUNDS = 3;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Acks {
  queue: Map<string, string>;
  mailbox: Map<number, string>;
}

/** Runs the child until a random number of acknowledgements (or a random time) has passed, then SIGKILLs it. */
async function runAndKill(config: StoreConfig, mailboxId: number, acks: Acks): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), JSON.stringify(config), String(mailboxId)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const target = 30 + Math.floor(Math.random() * 300);
  let count = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const closed = new Promise<void>((resolve) => lines.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child never became ready')), 30_000);
    lines.on('line', (line) => {
      const [kind, key, hash] = line.split(' ');
      if (kind === 'READY') {
        clearTimeout(timer);
        // kill after a random moment even if writes are slow
        setTimeout(() => resolve(), 200 + Math.random() * 1500);
        return;
      }
      if (kind === 'Q') acks.queue.set(key!, hash!);
      else if (kind === 'M') acks.mailbox.set(Number(key), hash!);
      if (++count >= target) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited early: ${code ?? signal}`)));
  });
  child.kill('SIGKILL');
  await exited;
  // lines already in the pipe were acknowledged before the kill: read them all
  await closed;
  return count;
}

async function verify(store: Store, mailboxId: number, acks: Acks): Promise<void> {
  for (const [id, hash] of acks.queue) {
    const entry = await store.queue.get(id);
    assert.ok(entry, `acknowledged queue entry ${id} is missing`);
    assert.equal(entry.recipients.length, 1);
    assert.equal(sha(await store.queue.content(id)), hash, `queue entry ${id} is damaged`);
  }
  const messages = await store.messages.list(mailboxId);
  const byUid = new Map(messages.map((m) => [m.uid, m]));
  for (const [uid, hash] of acks.mailbox) {
    assert.ok(byUid.has(uid), `acknowledged message uid ${uid} is missing`);
    assert.equal(sha(await store.messages.content(mailboxId, uid)), hash, `message ${uid} is damaged`);
  }
  // whatever is visible, acknowledged or not, must be whole and consistent
  const refs = new Map<string, number>();
  for (const m of messages) {
    const bytes = await store.messages.content(mailboxId, m.uid);
    assert.equal(bytes.length, m.size, `message ${m.uid} has a wrong size`);
    refs.set(m.blobId, (refs.get(m.blobId) ?? 0) + 1);
  }
  for (const e of await store.queue.list()) {
    assert.equal((await store.queue.content(e.id)).length, e.size);
    refs.set(e.blobId, (refs.get(e.blobId) ?? 0) + 1);
  }
  for (const [blobId, n] of refs) assert.equal(await store.blobs.refs(blobId), n, `reference count of blob ${blobId}`);
  const mb = await store.mailboxes.getById(mailboxId);
  assert.ok(mb);
  assert.equal(mb.messages, messages.length, 'message counter');
  assert.equal(mb.size, messages.reduce((n, m) => n + m.size, 0), 'size counter');
  assert.equal(mb.unseen, messages.filter((m) => !m.flags.includes('\\Seen')).length, 'unseen counter');
  assert.ok(messages.every((m) => m.uid < mb.uidNext && m.modseq <= mb.highestModseq), 'UIDNEXT/HIGHESTMODSEQ behind a message');
  const uids = messages.map((m) => m.uid);
  assert.deepEqual(uids, Array.from({ length: uids.length }, (_, i) => i + 1), 'UIDs have a gap');
}

async function crashRounds(config: StoreConfig): Promise<void> {
  let store = await openStore(config);
  await store.directory.addDomain('example.test');
  const account = await store.directory.addAccount({ address: 'crash@example.test', passwordHash: null });
  const inbox = await store.mailboxes.create(account.id, 'INBOX');
  await store.close();
  const acks: Acks = { queue: new Map(), mailbox: new Map() };
  for (let round = 1; round <= ROUNDS; round++) {
    const n = await runAndKill(config, inbox.id, acks);
    store = await openStore(config);
    try {
      await verify(store, inbox.id, acks);
    } finally {
      await store.close();
    }
    console.log(`crash round ${round} (${config.backend}): ${n} acknowledged writes before SIGKILL; ${acks.queue.size + acks.mailbox.size} verified in total`);
  }
}

describe('crash safety (SIGKILL during writes)', () => {
  test('embedded store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cartero-crash-'));
    try {
      await crashRounds({ backend: 'embedded', path: dir });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('postgres store', async (t) => {
    const db = await createTestDatabase();
    if ('skipped' in db) {
      console.log(`postgres crash test SKIPPED: ${db.skipped}`);
      t.skip(db.skipped);
      return;
    }
    try {
      await crashRounds({ backend: 'postgres', url: db.url });
    } finally {
      await db.drop();
    }
  });
});
