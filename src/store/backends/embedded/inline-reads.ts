/*
 * Lookups of one small row by its key, answered on the event loop's own read-only SQLite connection
 * instead of the reader thread. A hop to a worker thread and back costs two thread wake-ups, 0.3–0.6 ms
 * on a shared virtual machine, many times the lookup itself: SELECT (one mailbox row) took 0.8 ms
 * where a command without a store call took 0.2 ms. The rows named here are few and hot (their
 * pages stay cached), so the event loop is held for microseconds; scans, bodies and anything that grows
 * with a mailbox stay on the reader thread.
 *
 * Nothing here is authoritative: a busy database (busy_timeout 0, so the event loop never waits for a
 * lock), a failed open or any error makes the caller ask the reader thread, which gives the canonical
 * answer or error. WAL gives this connection, like the reader's, the last committed state.
 */
import Database from 'better-sqlite3';
import { StoreError } from '../../errors.js';
import type { OpContext } from './context.js';
import { createOps, type Ops } from './ops.js';

export const INLINE_READ_OPS: ReadonlySet<string> = new Set([
  'mailboxes.get',
  'mailboxes.getById',
  'directory.getDomain',
  'directory.getAccount',
  'directory.getAccountById',
  'directory.getAlias',
]);

/** What `tryCall` returns when the reader thread must answer instead. */
export const ASK_READER = Symbol('ask the reader thread');

export class InlineReader {
  private constructor(
    private readonly db: Database.Database,
    private readonly ops: Ops,
  ) {}

  /** null when the connection cannot be opened: every lookup then goes to the reader thread. */
  static open(dbPath: string): InlineReader | null {
    let db: Database.Database | null = null;
    try {
      db = new Database(dbPath, { fileMustExist: true });
      db.pragma('query_only = ON');
      db.pragma('busy_timeout = 0');
      const refuse = (): never => {
        throw new StoreError('invalid', 'not a point read');
      };
      const ctx: OpContext = { db, blobFileExists: refuse, unlinkBlobFile: refuse, signal: refuse };
      return new InlineReader(db, createOps(ctx));
    } catch {
      db?.close();
      return null;
    }
  }

  /**
   * The answer to `op` (one of INLINE_READ_OPS), or ASK_READER. A StoreError the operation raises on
   * purpose is still left to the reader to raise, so callers see exactly the errors they always saw.
   */
  tryCall(op: string, args: unknown[]): unknown {
    if (!INLINE_READ_OPS.has(op)) return ASK_READER;
    const [ns, name] = op.split('.') as [keyof Ops, string];
    const fn = (this.ops[ns] as Record<string, (...a: unknown[]) => unknown>)[name];
    if (!fn) return ASK_READER;
    try {
      return fn(...args);
    } catch {
      return ASK_READER;
    }
  }

  close(): void {
    this.db.close();
  }
}
