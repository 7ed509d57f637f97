/*
 * Main-thread client of the embedded worker: numbered requests, promises settled by replies, and a
 * typed view of each operation namespace. If the worker dies, every waiting call fails with
 * `unavailable` and later calls fail at once; nothing is retried here.
 */
import { Worker } from 'node:worker_threads';
import { StoreError } from '../../errors.js';
import type { Namespace, Ops } from './ops.js';
import type { FromWorker, Reply, Request, ToWorker, WorkerInit } from './worker.js';

/** A typed view of one namespace of operations over any `call` (one worker, or a reader/writer pair). */
export function remote<N extends Namespace>(call: (op: string, args: unknown[]) => Promise<unknown>, ns: N): Remote<N> {
  return new Proxy({} as Remote<N>, {
    get: (_t, name) => (typeof name === 'string' ? (...args: unknown[]) => call(`${ns}.${name}`, args) : undefined),
  });
}

type Promisified<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<R> : never };
export type Remote<N extends Namespace> = Promisified<Ops[N]>;

/** Opening the database (including WAL recovery after a crash) takes well under this. */
const READY_TIMEOUT_MS = 60_000;

export class WorkerClient {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  private outbox: Request[] = [];
  private dead: Error | null = null;
  private exited = false;
  private closed: Promise<void> | null = null;

  private constructor(worker: Worker) {
    this.worker = worker;
  }

  static start(init: WorkerInit, onSignal: (mailboxId: number, modseq: number) => void): Promise<WorkerClient> {
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
    const worker = fromSource
      ? new Worker(new URL('./tsx-worker.mjs', import.meta.url), { workerData: { ...init, entry: entry.href } })
      : new Worker(entry, { workerData: init });
    const client = new WorkerClient(worker);
    return new Promise((resolve, reject) => {
      // A worker that never reports ready (a module-loader hang was seen once in CI) must fail the
      // open, not hang it: the caller retries or the node exits and is restarted.
      const timer = setTimeout(() => {
        fail(new Error(`worker not ready after ${READY_TIMEOUT_MS / 1000} s`));
        void worker.terminate();
      }, READY_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(new StoreError('unavailable', `embedded store: ${err.message}`, { cause: err }));
      };
      worker.once('error', fail);
      worker.on('message', (m: FromWorker) => {
        if ('ready' in m) {
          clearTimeout(timer);
          worker.off('error', fail);
          worker.on('error', (err) => client.die(err));
          resolve(client);
        } else if ('fatal' in m) {
          fail(new Error(m.fatal));
        } else {
          for (const r of m.replies) client.settle(r);
          for (const [mailboxId, modseq] of m.signals) onSignal(mailboxId, modseq);
        }
      });
      worker.on('exit', () => {
        client.exited = true;
        client.die(new Error('worker exited'));
      });
    });
  }

  call(op: string, args: unknown[]): Promise<unknown> {
    if (this.dead) return Promise.reject(new StoreError('unavailable', `embedded store: ${this.dead.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Requests made during one turn of the event loop (e.g. every session whose data arrived in
      // this poll phase) cross to the worker in one message: the wake-up costs more than the copy.
      if (this.outbox.push({ id, op, args }) === 1) setImmediate(() => this.send());
    });
  }

  private send(): void {
    const requests = this.outbox;
    this.outbox = [];
    this.worker.postMessage({ requests } satisfies ToWorker);
  }

  close(): Promise<void> {
    if (!this.closed) {
      // a worker that is gone already (it crashed) sends no second 'exit': closing it is done
      this.closed = this.exited
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.worker.once('exit', () => resolve());
            this.worker.postMessage({ close: true } satisfies ToWorker);
          });
    }
    return this.closed;
  }

  private settle(m: Reply): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (m.ok) w.resolve(m.value);
    else w.reject(new StoreError(m.kind, m.message));
  }

  private die(err: Error): void {
    this.dead ??= err;
    for (const w of this.waiting.values()) w.reject(new StoreError('unavailable', `embedded store: ${err.message}`));
    this.waiting.clear();
  }
}
