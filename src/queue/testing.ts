/*
 * Test support for the receiving path (policy, queue, delivery, auth tests): a real embedded store in a
 * temporary directory, a manual clock, and a logger whose lines are kept as parsed JSON.
 * Used only by *.test.ts files; never imported by production code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../log/logger.js';
import { LocalDomains } from '../policy/domains.js';
import { openStore, type Clock, type Store } from '../store/index.js';
import type { BackoffSettings } from './backoff.js';
import type { CommitFn } from './commit.js';
import type { QueueScheduler } from './scheduler.js';
import { wireQueue } from './wiring.js';

export interface TestStore {
  store: Store;
  cleanup(): Promise<void>;
}

export async function openTestStore(prefix = 'cartero-rcv-'): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  return {
    store,
    async cleanup() {
      try {
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export class ManualClock implements Clock {
  constructor(public t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export type LogRecord = Record<string, unknown> & { msg?: string; level?: number };

export function captureLogger(): { logger: Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const logger = pino({ level: 'debug', base: null }, { write: (line: string) => void lines.push(JSON.parse(line) as LogRecord) });
  return { logger, lines };
}

export interface PipelineOptions {
  domains?: string[];
  relayDomains?: string[];
  delimiters?: string;
  recursionLimit?: number;
  expansionLimit?: number;
  concurrency?: number;
  leaseMs?: number;
  backoff?: BackoffSettings;
  owner?: string;
  /** let the commit file local recipients itself (serve's default); off here, so tests see the queue path */
  fileAtCommit?: boolean;
  /** delivery.duplicate_suppression_window in ms; default 0, off */
  duplicateWindowMs?: number;
}

export interface Pipeline {
  commit: CommitFn;
  scheduler: QueueScheduler;
  domains: LocalDomains;
}

/** The commit path and the scheduler with the local agent, wired as serve-mail.ts does, on a manual clock. */
export function buildPipeline(store: Store, clock: Clock, logger: Logger, o: PipelineOptions = {}): Pipeline {
  const domains = new LocalDomains({ store, domains: o.domains ?? [], relayDomains: o.relayDomains ?? [], cacheMs: 0, clock });
  const { commit, scheduler } = wireQueue({
    store,
    logger,
    clock,
    domains,
    delimiters: o.delimiters ?? '+',
    owner: o.owner ?? 'test',
    concurrency: o.concurrency ?? 20,
    leaseMs: o.leaseMs ?? 60_000,
    pollIntervalMs: 1000,
    backoff: o.backoff ?? { minimalMs: 300_000, maximalMs: 4_000_000, lifetimeMs: 5 * 86_400_000 },
    recursionLimit: o.recursionLimit ?? 10,
    expansionLimit: o.expansionLimit ?? 1000,
    fileAtCommit: o.fileAtCommit ?? false,
    duplicateWindowMs: o.duplicateWindowMs ?? 0,
  });
  return { commit, scheduler, domains };
}

export function message(subject: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@sender.test\r\nTo: b@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@sender.test>\r\n\r\n${body}\r\n`);
}

/** The INBOX messages of an account, as text. */
export async function inboxTexts(store: Store, address: string): Promise<string[]> {
  const account = await store.directory.getAccount(address);
  if (!account) throw new Error(`no account ${address}`);
  const inbox = await store.mailboxes.get(account.id, 'INBOX');
  if (!inbox) return [];
  const out: string[] = [];
  for (const m of await store.messages.list(inbox.id)) out.push((await store.messages.content(inbox.id, m.uid)).toString('utf8'));
  return out;
}
