/*
 * Stores for the POP3 tests on both backends: an embedded store in a temporary directory, or a fresh
 * PostgreSQL database from test/helpers/pg.ts (skipped with a reason when PostgreSQL is unreachable).
 * Accounts come from provisionAccount, messages from store.messages.append, as delivery makes them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import type { Logger } from '../../src/log/logger.js';
import { openStore, type Account, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';

export const PASSWORD = 'correct horse';

export interface TestStore {
  store: Store;
  backend: 'embedded' | 'postgres';
  cleanup(): Promise<void>;
}

export async function openEmbedded(): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-pop3-'));
  const store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  return {
    store,
    backend: 'embedded',
    async cleanup() {
      try {
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export async function openPostgres(): Promise<TestStore | { skipped: string }> {
  const db = await createTestDatabase();
  if ('skipped' in db) return db;
  const store = await openStore({ backend: 'postgres', url: db.url, pool_size: 4 });
  return {
    store,
    backend: 'postgres',
    async cleanup() {
      try {
        await store.close();
      } finally {
        await db.drop();
      }
    },
  };
}

let hash: Promise<string> | null = null;

/** An account with INBOX and the special-use mailboxes; every test account has PASSWORD. */
export async function addAccount(store: Store, address: string): Promise<Account> {
  const domain = address.split('@')[1]!;
  if (!(await store.directory.getDomain(domain))) await store.directory.addDomain(domain);
  return provisionAccount(store, address, await (hash ??= hashPassword(PASSWORD)));
}

export async function inboxOf(store: Store, account: Account): Promise<number> {
  const inbox = await store.mailboxes.get(account.id, 'INBOX');
  if (!inbox) throw new Error(`no INBOX for ${account.address}`);
  return inbox.id;
}

/** Appends messages to the account's INBOX; returns their UIDs. */
export async function deliver(store: Store, account: Account, messages: Buffer[]): Promise<number[]> {
  const inbox = await inboxOf(store, account);
  const uids: number[] = [];
  for (const content of messages) uids.push((await store.messages.append(inbox, { content }, Date.now())).uid);
  return uids;
}

/** Messages with what goes wrong in transit: leading dots, a lone ".", 8-bit bytes, long lines, blank lines. */
export function sampleMessage(i: number, bodyLines = 5): Buffer {
  const body: string[] = ['.leading dot', '..two dots', '.', '', 'Grüße, ¡olé!', 'x'.repeat(900)];
  for (let k = 0; k < bodyLines; k++) body.push(k % 3 === 0 ? `.line ${k}` : `line ${k}`);
  return Buffer.from(
    `From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@remote.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body.join('\r\n')}\r\n-- \r\nend\r\n`,
  );
}

export type LogLine = Record<string, unknown>;

export function captureLogger(lines: LogLine[]): Logger {
  return pino({ level: 'debug', base: null }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
}
