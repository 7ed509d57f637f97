/*
 * Store benchmark: durable appends of 4 KB messages (queue commit and mailbox append) with 1, 16 and 64
 * concurrent writers, lease+complete cycles, and the event-loop delay p99 while each runs, on both
 * backends. The reference in the same run is the disk itself: sequential 4 KB append + fdatasync.
 * Each case stops after BENCH_SECONDS (default 3) or BENCH_MAX_OPS (default 20000) operations.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Store } from '../src/store/api.js';
import { openStore } from '../src/store/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const MAX_OPS = Number(process.env.BENCH_MAX_OPS ?? 20_000);
const BODY = 4096;
const LOOP_RESOLUTION_MS = 2;
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'embedded,postgres').split(',');

interface Row {
  backend: string;
  operation: string;
  writers: number;
  ops: number;
  perSecond: number;
  latencyP99Ms: number;
  loopDelayP99Ms: number;
}

const POOL = Buffer.from(randomBytes(48 * 1024).toString('base64'));

/** A 4 KB message with unique content (so every append writes a new blob). */
function message(i: number): Buffer {
  const head = Buffer.from(`From: bench@example.test\r\nTo: user@example.test\r\nSubject: bench ${i} ${randomBytes(8).toString('hex')}\r\n\r\n`);
  const offset = Math.floor(Math.random() * (POOL.length - BODY));
  return Buffer.concat([head, POOL.subarray(offset, offset + BODY - head.length)]);
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

/** Runs `op` from `writers` concurrent loops until the time or count budget is spent. */
async function measure(writers: number, op: (i: number) => Promise<boolean | void>): Promise<Omit<Row, 'backend' | 'operation'>> {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const latencies: number[] = [];
  let next = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  histogram.enable();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < deadline && next < MAX_OPS) {
        const i = next++;
        const t = performance.now();
        // false: nothing left to do (e.g. the queue ran dry); stop this writer without counting
        if ((await op(i)) === false) break;
        latencies.push(performance.now() - t);
      }
    }),
  );
  histogram.disable();
  const elapsed = (performance.now() - start) / 1000;
  return {
    writers,
    ops: latencies.length,
    perSecond: latencies.length / elapsed,
    latencyP99Ms: p99(latencies),
    // the histogram records whole timer intervals; the delay is what exceeds the resolution
    loopDelayP99Ms: Math.max(0, histogram.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
  };
}

async function diskBaseline(dir: string): Promise<Row> {
  const fh = await open(join(dir, 'fsync-probe'), 'a');
  const chunk = randomBytes(BODY);
  try {
    const r = await measure(1, async () => {
      await fh.write(chunk);
      await fh.datasync();
    });
    return { backend: 'disk', operation: '4KB append+fdatasync', ...r };
  } finally {
    await fh.close();
  }
}

async function storeCases(backend: string, store: Store): Promise<Row[]> {
  const rows: Row[] = [];
  await store.directory.addDomain('example.test');
  // delivery spreads over many users: one mailbox per writer slot, 64 users
  const inboxes: number[] = [];
  for (let u = 0; u < 64; u++) {
    const account = await store.directory.addAccount({ address: `user${u}@example.test`, passwordHash: null });
    inboxes.push((await store.mailboxes.create(account.id, 'INBOX')).id);
  }
  for (const writers of [1, 16, 64]) {
    const r = await measure(writers, async (i) => {
      await store.queue.commit({ sender: 'bench@example.test', recipients: [{ address: 'user0@example.test' }], content: message(i) }, Date.now());
    });
    rows.push({ backend, operation: 'queue.commit 4KB', ...r });
  }
  for (const writers of [1, 16, 64]) {
    const r = await measure(writers, async (i) => {
      await store.messages.append(inboxes[i % inboxes.length]!, { content: message(i) }, Date.now());
    });
    rows.push({ backend, operation: 'append 4KB, 64 mailboxes', ...r });
  }
  {
    // the worst case: every writer appends to the same mailbox, whose UID counter serialises them
    const r = await measure(16, async (i) => {
      await store.messages.append(inboxes[0]!, { content: message(i) }, Date.now());
    });
    rows.push({ backend, operation: 'append 4KB, one mailbox', ...r });
  }
  for (const writers of [1, 16]) {
    const r = await measure(writers, async () => {
      const [lease] = await store.queue.lease({ owner: `bench`, limit: 1, leaseMs: 60_000, now: Date.now() });
      if (!lease) return false;
      const outcomes = lease.entry.recipients.filter((x) => x.state === 'pending').map((x) => ({ recipientId: x.id, outcome: 'done' as const }));
      await store.queue.complete(lease.entry.id, lease.token, outcomes, Date.now());
      return true;
    });
    rows.push({ backend, operation: 'lease+complete', ...r });
  }
  return rows;
}

function printTable(rows: Row[]): void {
  const header = ['backend', 'operation', 'writers', 'ops', 'ops/s', 'p99 ms', 'loop p99 ms'];
  const lines = rows.map((r) => [r.backend, r.operation, String(r.writers), String(r.ops), r.perSecond.toFixed(0), r.latencyP99Ms.toFixed(2), r.loopDelayP99Ms.toFixed(2)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(fmt(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
}

export async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-bench-'));
  const rows: Row[] = [];
  try {
    rows.push(await diskBaseline(dir));
    if (BACKENDS.includes('embedded')) {
      const embedded = await openStore({ backend: 'embedded', path: join(dir, 'store') });
      try {
        rows.push(...(await storeCases('embedded', embedded)));
      } finally {
        await embedded.close();
      }
    }
    const pg = BACKENDS.includes('postgres')
      ? await (await import('../test/helpers/pg.js')).createTestDatabase()
      : { skipped: 'not selected (BENCH_BACKENDS)' };
    if ('skipped' in pg) console.log(`# postgres bench skipped: ${pg.skipped}`);
    else {
      const store = await openStore({ backend: 'postgres', url: pg.url, pool_size: 20 });
      try {
        rows.push(...(await storeCases('postgres', store)));
      } finally {
        await store.close();
        await pg.drop();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\nstore benchmark (${SECONDS}s or ${MAX_OPS} ops per case, 4 KB messages, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE})`);
  printTable(rows);
}
