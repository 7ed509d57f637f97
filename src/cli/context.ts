/*
 * What every CLI command runs with: the I/O it may use (injectable for tests), opening the configured
 * store for one command, and turning expected store errors into one-line messages.
 * Never prints by itself; errors (ConfigError, StoreError) propagate to main.ts, which maps exit codes.
 */
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { StoreErrorKind } from '../store/errors.js';
import { isStoreError, openStore, type Store } from '../store/index.js';
import { CliError } from './args.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** the whole of standard input */
  readStdin(): Promise<string>;
  /**
   * Standard input as bytes (message submission must not decode it). With `limit`, reading stops once
   * more than `limit` bytes arrived: the result is then `limit + 1` bytes long, enough to tell "too big".
   */
  readStdinBytes(limit?: number): Promise<Buffer>;
  env: NodeJS.ProcessEnv;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    return Buffer.concat(chunks).toString('utf8');
  },
  readStdinBytes: (limit) => readStreamBytes(process.stdin, limit),
  env: process.env,
};

/** Reads a stream to its end, or to `limit + 1` bytes (then stops reading and drops the rest). */
export async function readStreamBytes(stream: AsyncIterable<unknown> & { destroy?(): void }, limit = Infinity): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(buf);
    size += buf.length;
    if (size > limit) {
      stream.destroy?.();
      return Buffer.concat(chunks).subarray(0, limit + 1);
    }
  }
  return Buffer.concat(chunks);
}

/** Loads the configuration, opens its store (migrating unless store.migrate_on_start is false), runs `fn`, closes. */
export async function withStore<T>(configFile: string, fn: (store: Store, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(configFile);
  const store = await openStore(config.store, { migrate: config.store.migrate_on_start });
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/**
 * Rewrites the StoreError kinds a command expects into one-line messages for the administrator
 * (exit 1); anything else propagates unchanged.
 */
export async function explain<T>(work: Promise<T>, messages: Partial<Record<StoreErrorKind, string>>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const message = isStoreError(err) ? messages[err.kind] : undefined;
    if (message) throw new CliError(message, { cause: err });
    throw err;
  }
}
