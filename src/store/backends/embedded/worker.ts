/*
 * The embedded backend's single SQLite writer, in a worker thread so that a synchronous SQLite call or a
 * WAL fsync never stalls the event loop of the protocol servers. Requests that arrive while a batch
 * commits are run together in the next transaction (group commit: one fsync for many messages); each
 * request runs in its own savepoint so one failure does not undo the others. Replies and change signals
 * are posted only after COMMIT returns, i.e. after the data is durable (synchronous=FULL; see
 * RELAXED_OPS for the one exception).
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { StoreError } from '../../errors.js';
import { BlobFiles } from './blobfiles.js';
import type { OpContext } from './context.js';
import { createOps, READ_OPS, type Ops } from './ops.js';
import { transferablesOf } from './transfer.js';

export interface WorkerInit {
  dbPath: string;
  blobRoot: string;
  /** a reader runs only READ_OPS, each on its own, without a write transaction */
  reader: boolean;
}

export interface Request {
  id: number;
  op: string;
  args: unknown[];
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; kind: StoreError['kind']; message: string };

/** One message per batch each way: per-message overhead between threads costs more than the SQL. */
export type FromWorker = { replies: Reply[]; signals: [number, number][] } | { ready: true } | { fatal: string };
export type ToWorker = { requests: Request[] } | { close: true };

/**
 * Queue bookkeeping of the delivery side. A batch made only of these commits without waiting for the
 * WAL fsync (synchronous=NORMAL): its frames are written before the reply, so a killed process loses
 * nothing, and the next ordinary commit's fsync makes them durable with it (the WAL is append-only).
 * Only an operating-system crash in between can lose them, and losing a lease, a renewal or a delivery
 * outcome only repeats an attempt — keyed mailbox insertion and XQUEUEID receipts keep that from making
 * a copy — as Postfix repeats one when it loses a queue-file update. Queue commits (the 250), mailbox
 * changes IMAP clients see, and everything else keep synchronous=FULL.
 */
const READER_MMAP_BYTES = 2 ** 40;

const RELAXED_OPS: ReadonlySet<string> = new Set(['queue.lease', 'queue.renew', 'queue.complete']);

const port = parentPort!;
const init = workerData as WorkerInit;

function openDatabase(path: string, reader: boolean): Database.Database {
  const db = new Database(path);
  if (reader) {
    db.pragma('query_only = ON');
    db.pragma('busy_timeout = 5000');
    // The reader serves SEARCH BODY, FETCH and RETR of whole mailboxes: reading pages through a mapping
    // instead of read() calls made a read of a stored message 25–40% cheaper, and a page beyond the
    // mapping costs a pread() per page (an 8 KB message read 3x slower past the first 256 MB). So: as
    // much of the file as SQLite will map (its build's limit, 2 GB). Address space, not memory.
    db.pragma(`mmap_size = ${READER_MMAP_BYTES}`);
    return db;
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

function toReply(id: number, err: unknown): Reply {
  if (err instanceof StoreError) return { id, ok: false, kind: err.kind, message: err.message };
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_CONSTRAINT')) return { id, ok: false, kind: 'conflict', message: (err as Error).message };
  return { id, ok: false, kind: 'unavailable', message: `embedded store: ${(err as Error).message}` };
}

function run(ops: Ops, req: Request): unknown {
  const [ns, name] = req.op.split('.') as [keyof Ops, string];
  const table = ops[ns] as Record<string, (...a: unknown[]) => unknown> | undefined;
  const fn = table?.[name];
  if (!fn) throw new StoreError('invalid', `unknown operation ${req.op}`);
  return fn(...req.args);
}

function readOne(ops: Ops, req: Request): Reply {
  if (!READ_OPS.has(req.op)) return { id: req.id, ok: false, kind: 'invalid', message: `${req.op} is not a read operation` };
  try {
    return { id: req.id, ok: true, value: run(ops, req) };
  } catch (err) {
    return toReply(req.id, err);
  }
}

function main(): void {
  let db: Database.Database;
  let files: BlobFiles;
  try {
    db = openDatabase(init.dbPath, init.reader);
    files = BlobFiles.attach(init.blobRoot);
  } catch (err) {
    port.postMessage({ fatal: (err as Error).message } satisfies FromWorker);
    return;
  }
  const signals = new Map<number, number>();
  const ctx: OpContext = {
    db,
    blobFileExists: (id) => files.existsSync(id),
    unlinkBlobFile: (id) => files.unlinkSync(id),
    signal: (mailboxId, modseq) => signals.set(mailboxId, Math.max(modseq, signals.get(mailboxId) ?? 0)),
  };
  const ops = createOps(ctx);
  let pending: Request[] = [];
  let scheduled = false;
  let relaxedSync = false;

  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    if (init.reader) {
      const replies = batch.map((req) => readOne(ops, req));
      port.postMessage({ replies, signals: [] } satisfies FromWorker, transferablesOf(replies));
      return;
    }
    let replies: Reply[] = [];
    const relaxed = batch.every((req) => RELAXED_OPS.has(req.op));
    if (relaxed !== relaxedSync) {
      db.pragma(relaxed ? 'synchronous = NORMAL' : 'synchronous = FULL');
      relaxedSync = relaxed;
    }
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const req of batch) {
        db.exec('SAVEPOINT op');
        try {
          const value = run(ops, req);
          db.exec('RELEASE op');
          replies.push({ id: req.id, ok: true, value });
        } catch (err) {
          db.exec('ROLLBACK TO op');
          db.exec('RELEASE op');
          replies.push(toReply(req.id, err));
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      signals.clear();
      replies = batch.map((req) => toReply(req.id, err));
    }
    port.postMessage({ replies, signals: [...signals] } satisfies FromWorker, transferablesOf(replies));
    signals.clear();
  };

  port.on('message', (msg: ToWorker) => {
    if ('close' in msg) {
      if (pending.length > 0) flush();
      db.close();
      port.close();
      return;
    }
    pending.push(...msg.requests);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}

main();
