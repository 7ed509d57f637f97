/*
 * Reads answered on the event loop's own read-only SQLite connection instead of the reader thread. A hop
 * to a worker thread and back costs two thread wake-ups, 0.3–0.6 ms on a shared virtual machine, many
 * times a lookup: SELECT (one mailbox row) took 0.8 ms where a command without a store call took 0.2 ms.
 * - key lookups of one small, hot row (their pages stay cached): microseconds on the loop;
 * - the bytes of a batch of messages a client is waiting for (FETCH of bodies, POP3 RETR read-ahead,
 *   at most a few hundred messages or a few MB per call): ~10 us per 4 KB message. On the reader thread
 *   the two threads mostly waited for each other: a FETCH of 1,000 bodies took 21–25 ms and 21–26 ms of
 *   CPU, here 14–17 ms and 14–19 ms. The store yields to the loop after each such batch.
 * Scans that grow with a mailbox (SEARCH reading every body, the mailbox index) stay on the reader
 * thread, where reading the next batch overlaps the work on this one.
 *
 * Nothing here is authoritative: a busy database (busy_timeout 0, so the event loop never waits for a
 * lock), a failed open or any error — a CRC mismatch included — makes the caller ask the reader thread,
 * which gives the canonical answer or error. WAL gives this connection, like the reader's, the last
 * committed state.
 */
import Database from 'better-sqlite3';
import { StoreError } from '../../errors.js';
import { createOps, type Ops } from './ops.js';

const INLINE_READ_OPS = ['mailboxes.get', 'mailboxes.getById', 'directory.getDomain', 'directory.getAccount', 'directory.getAccountById', 'directory.getAlias', 'messages.contentsOf'] as const;

/** Inline operations that may hold the loop for a few milliseconds: their callers get the answer on a later turn. */
const BATCH_READ_OPS: ReadonlySet<string> = new Set(['messages.contentsOf']);

/**
 * Messages per batch read answered here; a longer list (no server path asks for one: FETCH reads 200 at
 * a time, POP3 at most 512 KB) goes to the reader thread rather than holding the loop for its length.
 */
export const MAX_INLINE_BATCH = 1000;

/** As the reader thread's mapping (worker.ts): message bytes read through the map, not read() calls. */
const MMAP_BYTES = 2 ** 40;

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
      db.pragma(`mmap_size = ${MMAP_BYTES}`);
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
    if (BATCH_READ_OPS.has(op) && (!Array.isArray(args[1]) || args[1].length > MAX_INLINE_BATCH)) return ASK_READER;
    try {
      return lookup(...args);
    } catch {
      return ASK_READER;
    }
  }

  /**
   * tryCall as the store's callers see it: ASK_READER, or a promise of the answer. After a batch of
   * bytes, which held the loop for a while, the answer comes on the next turn, so what waits for I/O
   * runs before the caller's next batch.
   */
  answer(op: string, args: unknown[]): Promise<unknown> | typeof ASK_READER {
    const value = this.tryCall(op, args);
    if (value === ASK_READER) return ASK_READER;
    return BATCH_READ_OPS.has(op) ? new Promise((resolve) => setImmediate(resolve, value)) : Promise.resolve(value);
  }

  close(): void {
    this.db.close();
  }
}
