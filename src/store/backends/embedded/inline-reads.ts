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
import { createOps, type Ops } from './ops.js';

const INLINE_READ_OPS = ['mailboxes.get', 'mailboxes.getById', 'directory.getDomain', 'directory.getAccount', 'directory.getAccountById', 'directory.getAlias'] as const;

/** What `tryCall` returns when the reader thread must answer instead. */
export const ASK_READER = Symbol('ask the reader thread');

type Lookup = (...args: unknown[]) => unknown;

export class InlineReader {
  private constructor(
    private readonly db: Database.Database,
    /** INLINE_READ_OPS by name, resolved once */
    private readonly lookups: ReadonlyMap<string, Lookup>,
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
      const ops = createOps({ db, blobFileExists: refuse, unlinkBlobFile: refuse, signal: refuse });
      const lookups = new Map<string, Lookup>();
      for (const op of INLINE_READ_OPS) {
        const [ns, name] = op.split('.') as [keyof Ops, string];
        const fn = (ops[ns] as Record<string, Lookup | undefined>)[name];
        if (fn) lookups.set(op, fn);
      }
      return new InlineReader(db, lookups);
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
    const lookup = this.lookups.get(op);
    if (!lookup) return ASK_READER;
    try {
      return lookup(...args);
    } catch {
      return ASK_READER;
    }
  }

  close(): void {
    this.db.close();
  }
}
