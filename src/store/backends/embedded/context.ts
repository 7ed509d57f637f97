/*
 * What every synchronous operation of the embedded worker receives: the SQLite handle, access to the
 * blob files (for existence checks that must be serialised with commits) and the change signaller.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { BlobId } from '../../api.js';

export interface OpContext {
  db: Database;
  blobFileExists(id: BlobId): boolean;
  /** true when a file was removed */
  unlinkBlobFile(id: BlobId): boolean;
  /** queued and posted only after the surrounding transaction commits */
  signal(mailboxId: number, highestModseq: number): void;
}

/** Statement cache: prepare each SQL text once per connection. */
export function stmt(ctx: OpContext, sql: string): Statement<unknown[]> {
  let cache = statementCaches.get(ctx.db);
  if (!cache) statementCaches.set(ctx.db, (cache = new Map()));
  let s = cache.get(sql);
  if (!s) cache.set(sql, (s = ctx.db.prepare<unknown[]>(sql)));
  return s;
}

const statementCaches = new WeakMap<Database, Map<string, Statement<unknown[]>>>();
