/*
 * Which domains are ours: local mailbox domains (config `domains` ∪ directory domains) and relay
 * domains (config `relay_domains`). Directory answers are cached per name for a short time so a busy
 * RCPT phase does not hit the store for every recipient. Compares exact lowercased names: a trailing
 * dot or an address literal is never one of our domains. Store errors propagate to the caller.
 */
import type { Clock, Store } from '../store/index.js';
import { systemClock } from '../store/api.js';
import { isStoreError } from '../store/index.js';
import { TtlCache } from '../ttl-cache.js';
import { isPlainDomain } from './address.js';

/** Measured on the embedded store: ~190 µs per uncached lookup (a worker round trip), ~1 µs cached. */
export const DEFAULT_DOMAIN_CACHE_MS = 2000;

export interface LocalDomainsOptions {
  store: Store;
  domains: readonly string[];
  relayDomains: readonly string[];
  /** how long a directory answer is reused; 0 asks the store every time */
  cacheMs?: number;
  clock?: Clock;
}

export class LocalDomains {
  private readonly configured: ReadonlySet<string>;
  private readonly relay: ReadonlySet<string>;
  /** null when answers are not kept (cacheMs 0); bounded, so a flood of random domains cannot grow it */
  private readonly cache: TtlCache<boolean> | null;
  private readonly clock: Clock;

  constructor(private readonly options: LocalDomainsOptions) {
    this.configured = new Set(options.domains.map((d) => d.toLowerCase()));
    this.relay = new Set(options.relayDomains.map((d) => d.toLowerCase()));
    const cacheMs = options.cacheMs ?? DEFAULT_DOMAIN_CACHE_MS;
    this.cache = cacheMs > 0 ? new TtlCache<boolean>(cacheMs) : null;
    this.clock = options.clock ?? systemClock;
  }

  isRelay(domain: string): boolean {
    return this.relay.has(domain.toLowerCase());
  }

  async isLocal(domain: string): Promise<boolean> {
    const d = domain.toLowerCase();
    if (this.configured.has(d)) return true;
    // Only plain host names reach the store: it folds a trailing dot, which must stay "not ours".
    if (!isPlainDomain(d)) return false;
    const now = this.clock.now();
    const hit = this.cache?.get(d, now);
    if (hit !== undefined) return hit;
    const local = await this.lookup(d);
    this.cache?.set(d, local, now);
    return local;
  }

  private async lookup(domain: string): Promise<boolean> {
    try {
      return (await this.options.store.directory.getDomain(domain)) !== null;
    } catch (err) {
      if (isStoreError(err, 'invalid')) return false;
      throw err;
    }
  }
}
