/*
 * Receiving crash test (issue 4): 8 concurrent SMTP clients send 2,000 messages with unique Message-IDs
 * to a `cartero serve` process; we SIGKILL it at a random moment, restart it, send the rest, and wait for
 * the queue to drain. Every message that got 250 must be in its mailbox exactly once and no mailbox may
 * hold a duplicate. Runs on the embedded store and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Store } from '../../src/store/api.js';
import { openStore, type StoreConfig } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';

const TOTAL = Number(process.env.CARTERO_CRASH_MESSAGES ?? 2000);
const CLIENTS = 8;
const USERS = ['u0', 'u1', 'u2', 'u3'].map((u) => `${u}@example.test`);
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cartero.js');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function storeYaml(store: StoreConfig): string {
  return store.backend === 'embedded' ? `{ backend: embedded, path: ${store.path} }` : `{ backend: postgres, url: "${store.url}" }`;
}

/** Nodes still running when this process is told to stop (the runner's file timeout) are killed with it. */
const running = new Set<ChildProcess>();
process.once('SIGTERM', () => {
  for (const child of running) child.kill('SIGKILL');
  process.exit(1);
});

async function startNode(config: string, port: number, log: string): Promise<ChildProcess> {
  // stderr to a file, never to an inherited pipe: an orphaned node holding the runner's pipe kept a CI
  // run from ever finishing after this file timed out
  const child = spawn(process.execPath, [CLI, 'serve', '-c', config], { stdio: ['ignore', 'ignore', openSync(log, 'a')] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await TestSmtpClient.open(port)).close();
      return child;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('cartero serve did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** SIGTERM, and SIGKILL if that has not ended it in 20 s; a node that had already died is reported. */
async function stopNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    console.log(`smtp crash: the node had exited by itself (code ${child.exitCode}, signal ${child.signalCode})`);
    return;
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited(child);
  clearTimeout(timer);
}

/** Sends until `budget` is used up or the server goes away; returns the Message-IDs that got 250. */
async function sendLoad(port: number, budget: { left: number }, acked: Set<string>, onAck: (n: number) => void = () => {}): Promise<void> {
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      let client: TestSmtpClient;
      try {
        client = await TestSmtpClient.open(port);
        await client.command(`EHLO client${c}.test`, 250);
      } catch {
        return;
      }
      while (budget.left > 0) {
        budget.left--;
        const id = `<${randomBytes(9).toString('hex')}@crash.test>`;
        const to = USERS[Math.floor(Math.random() * USERS.length)]!;
        const body = `From: load@crash.test\r\nTo: ${to}\r\nMessage-ID: ${id}\r\nSubject: crash\r\n\r\n${randomBytes(600).toString('base64')}\r\n`;
        try {
          const r = await client.send('load@crash.test', [to], body);
          if (r.code === 250) {
            acked.add(id);
            onAck(acked.size);
          }
        } catch {
          budget.left++; // not acknowledged: it may be sent again after the restart under a new id
          return;
        }
      }
      client.close();
    }),
  );
}

async function messageIds(store: Store): Promise<string[]> {
  const ids: string[] = [];
  for (const address of USERS) {
    const account = await store.directory.getAccount(address);
    const inbox = account && (await store.mailboxes.get(account.id, 'INBOX'));
    if (!inbox) continue;
    for (const m of await store.messages.list(inbox.id)) {
      const head = (await store.messages.content(inbox.id, m.uid)).toString('latin1');
      const id = /^Message-ID: (.*)$/im.exec(head)?.[1]?.trim();
      if (id) ids.push(id);
    }
  }
  return ids;
}

async function crashRun(storeConfig: StoreConfig, dir: string): Promise<void> {
  const port = await freePort();
  const config = join(dir, 'cartero.yaml');
  await writeFile(
    config,
    [
      'hostname: crash.example.test',
      `store: ${storeYaml(storeConfig)}`,
      'domains: [example.test]',
      'mynetworks: [127.0.0.0/8]',
      `smtp: { listen: [ { address: 127.0.0.1, port: ${port} } ] }`,
      'imap: { listen: [] }',
      'pop3: { listen: [] }',
      'lmtp: { listen: [] }',
      'log: { level: warn }',
      // a killed node's leases must run out before its entries are retried: keep that short here
      'delivery: { lease_seconds: 3, poll_interval_ms: 200 }',
      '',
    ].join('\n'),
  );
  const setup = await openStore(storeConfig);
  await setup.directory.addDomain('example.test');
  for (const u of USERS) {
    const a = await setup.directory.addAccount({ address: u, passwordHash: null });
    await setup.mailboxes.create(a.id, 'INBOX');
  }
  await setup.close();

  const acked = new Set<string>();
  const budget = { left: TOTAL };
  const log = join(dir, 'node.log');
  let node = await startNode(config, port, log);
  const started = Date.now();
  let killedAfter = 0;
  let killed = false;
  const kill = (): void => {
    if (killed) return;
    killed = true;
    killedAfter = Date.now() - started;
    node.kill('SIGKILL');
  };
  // at a random moment, or after a random share of the 250s, whichever comes first: the load alone
  // can take less than the timer's range on a fast machine
  const killer = setTimeout(kill, 200 + Math.random() * 2500);
  const killAt = Math.floor(TOTAL * (0.05 + Math.random() * 0.85));
  await sendLoad(port, budget, acked, (n) => {
    if (n >= killAt) kill();
  });
  clearTimeout(killer);
  // A fast machine can send the whole load before the random moment comes: the crash happens now then.
  // (Clearing the timer without killing left this test waiting forever for the node to exit: the CI
  // stalls of earlier runs, seen only where the load went fast enough.)
  kill();
  await exited(node);
  const beforeRestart = acked.size;

  node = await startNode(config, port, log);
  // says where this run is if it is still going after 5 minutes (see the stall note below)
  const watchdog = setTimeout(() => console.log(`smtp crash (${storeConfig.backend}): still at "${step.at}" after 300 s`), 300_000);
  const step = { at: 'second load' };
  try {
    await sendLoad(port, budget, acked);
    // Twice in CI (never locally) this check stalled for over ten minutes with the node idle and the
    // queue empty. Until that is understood: a check that does not finish in time is logged with the
    // step it reached and run once more on a fresh store instance (the stalled one is abandoned).
    const verify = async (): Promise<void> => {
      step.at = 'open';
      const store = await openStore(storeConfig, { migrate: false });
      try {
        step.at = 'drain';
        const deadline = Date.now() + 120_000;
        while ((await store.queue.counts(Date.now())).active > 0) {
          assert.ok(Date.now() < deadline, 'the queue did not drain');
          await new Promise((r) => setTimeout(r, 200));
        }
        step.at = 'read mailboxes';
        const ids = await messageIds(store);
        step.at = 'compare';
        const seen = new Set<string>();
        for (const id of ids) {
          assert.ok(!seen.has(id), `duplicate in a mailbox: ${id}`);
          seen.add(id);
        }
        for (const id of acked) assert.ok(seen.has(id), `acknowledged message ${id} was lost`);
        console.log(`smtp crash (${storeConfig.backend}): killed after ${killedAfter} ms with ${beforeRestart} acknowledged; ${acked.size} acknowledged in all, ${ids.length} delivered, 0 lost, 0 duplicated`);
      } finally {
        step.at = 'close';
        await store.close();
      }
    };
    const STALL_MS = 180_000;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), STALL_MS)));
    try {
      if ((await Promise.race([verify().then(() => 'done' as const), stalled])) === 'stalled') {
        console.log(`smtp crash (${storeConfig.backend}): the check stalled at "${step.at}" for ${STALL_MS / 1000} s; checking again on a fresh store`);
        await verify();
      }
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    console.log(`smtp crash (${storeConfig.backend}): failed at "${step.at}"; the node's log:\n${await readFile(log, 'utf8').catch(() => '')}`);
    throw err;
  } finally {
    clearTimeout(watchdog);
    step.at = 'stop the node';
    await stopNode(node);
  }
}

describe('SMTP receiving survives SIGKILL: every 250 delivered exactly once', () => {
  test('embedded store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cartero-smtp-crash-'));
    try {
      await crashRun({ backend: 'embedded', path: join(dir, 'data') }, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('postgres store', async (t) => {
    const db = await createTestDatabase();
    if ('skipped' in db) {
      t.skip(db.skipped);
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'cartero-smtp-crash-'));
    try {
      await crashRun({ backend: 'postgres', url: db.url }, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    }
  });
});
