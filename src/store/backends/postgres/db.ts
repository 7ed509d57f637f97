/*
 * The connection pool of one postgres Store and the only way the other modules run SQL: `query` for a
 * single statement, `tx` for anything that takes more than one. Owns type parsing (int8 -> number) on
 * its own pool, never on pg's global types, so other code using pg is not surprised.
 * Error policy: every failure leaves as a StoreError (errors.ts); deadlocks and serialization failures
 * are retried a few times, since they only mean another transaction won a race.
 */
import pg from 'pg';
import { toStoreError, isRetryable } from './errors.js';
import { Failover, isConnectionFailure } from './failover.js';
import { parseMultiHostUrl } from './hosts.js';

export type Row = pg.QueryResultRow;

/** What a module needs from a connection: run one statement. */
export interface Sql {
  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** Our times, sizes and counts fit in 2^53, so BIGINT (and the NUMERIC of SUM(bigint)) become numbers. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if ((oid === INT8_OID || oid === NUMERIC_OID) && format !== 'binary') return (v: string) => Number(v);
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

const MAX_ATTEMPTS = 5;

/** The channel of mailbox change signals; payload `mailboxId:highestModseq`. */
export const NOTIFY_CHANNEL = 'cartero_mailbox';

export interface DbOptions {
  url: string;
  poolSize: number;
  /** how long to wait for a connection before answering `unavailable` */
  connectTimeoutMs?: number;
}

/** Mailbox signals a transaction recorded (mailbox id → highest modseq), keyed by its connection. */
const recordedSignals = new WeakMap<object, Map<number, number>>();

export type SignalSink = (signals: ReadonlyMap<number, number>) => void;

export class Db {
  readonly pool: pg.Pool;
  /** set for a URL with several hosts or target_session_attrs (see failover.ts) */
  readonly failover: Failover | null;
  /** Set by the change feed: receives the signals of each committed transaction (see changes.ts). */
  signalSink: SignalSink | null = null;
  private closed = false;

  constructor(readonly options: DbOptions) {
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const parsed = parseMultiHostUrl(options.url);
    this.failover = parsed ? new Failover(parsed, { types }, connectTimeoutMs) : null;
    this.pool = new pg.Pool({
      connectionString: this.failover?.url ?? options.url,
      max: options.poolSize,
      types,
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'cartero',
      ...(this.failover ? { Client: this.failover.Client } : {}),
    });
    // An idle client whose server went away emits here; without a listener the process would crash.
    // The next query gets a fresh connection and reports its own failure.
    this.pool.on('error', () => this.failover?.invalidate());
    // A server shutting down sends a FATAL message and then drops the socket: one client can emit
    // 'error' twice, and pg-pool listens only once per query (and not at all once the client is
    // released). Every pooled client keeps a listener of its own so a second event cannot end the process;
    // the query that was running still gets its error through its callback.
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** Settings for a connection outside the pool (the LISTEN connection), typed like the pool's. */
  clientConfig(applicationName: string): pg.ClientConfig {
    return { connectionString: this.failover?.url ?? this.options.url, types, connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000, application_name: applicationName };
  }

  /** A connection outside the pool (LISTEN, job locks) that follows the failover choice like the pool's. */
  newClient(applicationName: string, extra: pg.ClientConfig = {}): pg.Client {
    const Client = this.failover?.Client ?? pg.Client;
    return new Client({ ...this.clientConfig(applicationName), ...extra });
  }

  /** After a failure: a connection-level one makes the next connection look for the writable server again. */
  noteFailure(err: unknown): void {
    if (this.failover && isConnectionFailure(err)) this.failover.invalidate();
  }

  async query<R extends Row = Row>(what: string, text: string, params: readonly unknown[] = []): Promise<R[]> {
    try {
      const res = await this.pool.query<R>(text, params as unknown[]);
      return res.rows;
    } catch (err) {
      this.noteFailure(err);
      throw toStoreError(err, what);
    }
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED; row locks make it safe) and commits. On a deadlock or
   * serialization failure the whole of `fn` runs again, so `fn` must have no effects outside `sql`.
   */
  async tx<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(fn);
      } catch (err) {
        if (attempt < MAX_ATTEMPTS && isRetryable(err)) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
          continue;
        }
        this.noteFailure(err);
        throw toStoreError(err, what);
      }
    }
  }

  private async once<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: unknown = undefined;
    // pg-pool listens for errors only on idle clients: a server that goes away between two statements
    // of this transaction would otherwise be an unhandled 'error' event and end the process
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    const signals = new Map<number, number>();
    recordedSignals.set(client, signals);
    try {
      await client.query('BEGIN');
      const result = await fn(client as Sql);
      await client.query('COMMIT');
      if (signals.size > 0) this.signalSink?.(signals);
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr;
      }
      // a read-only server (a demoted primary, a standby) stays one: do not hand this connection out again
      if (broken === undefined && this.failover && isConnectionFailure(err)) broken = err;
      throw err;
    } finally {
      client.off('error', onError);
      recordedSignals.delete(client);
      // a connection that failed to roll back is in an unknown state: destroy it rather than reuse it
      client.release(broken === undefined ? undefined : toError(broken));
    }
  }

  async end(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Records a mailbox change to signal once the transaction of `sql` commits. The NOTIFY is sent after
 * COMMIT, outside the writing transaction: PostgreSQL serialises the commits of notifying transactions
 * on one global lock, which would cap appends across all mailboxes at one WAL flush at a time.
 */
export function notifyMailboxes(sql: Sql, changes: readonly { id: number; highestModseq: number }[]): void {
  const signals = recordedSignals.get(sql);
  if (!signals) throw new Error('notifyMailboxes outside Db.tx');
  for (const c of changes) signals.set(c.id, Math.max(c.highestModseq, signals.get(c.id) ?? 0));
}
