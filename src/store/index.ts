/*
 * Opens the store the configuration names. Backends load lazily so a node on the embedded store never
 * loads the PostgreSQL driver and vice versa.
 */
import type { Store } from './api.js';

export type StoreConfig =
  | { backend: 'embedded'; path: string }
  | { backend: 'postgres'; url: string; pool_size?: number };

export interface OpenStoreOptions {
  /** apply pending migrations at open (default true) */
  migrate?: boolean;
}

export async function openStore(config: StoreConfig, options: OpenStoreOptions = {}): Promise<Store> {
  const store =
    config.backend === 'embedded'
      ? await (await import('./backends/embedded/store.js')).openEmbeddedStore(config)
      : await (await import('./backends/postgres/store.js')).openPostgresStore(config);
  if (options.migrate !== false) await store.migrate();
  return store;
}

export type * from './api.js';
export { StoreError, isStoreError } from './errors.js';
