/*
 * The resolver's answer cache: positive answers for their TTL (capped), NXDOMAIN/NODATA for the RFC
 * 2308 negative TTL (capped lower, so a zone fixed by its admin is seen soon), temporary failures never.
 * Time comes from the injected clock; the size is bounded (oldest entries go first).
 */
import type { DnsResult } from './types.js';

export interface DnsCacheOptions {
  /** entries kept at most; default 10000 */
  maxEntries?: number;
  /** cap on positive TTLs, seconds; default 86400 */
  maxTtlS?: number;
  /** cap on negative TTLs, seconds; default 900 */
  maxNegativeTtlS?: number;
}

interface Entry {
  expires: number;
  result: DnsResult<unknown>;
}

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxTtlS: number;
  private readonly maxNegativeTtlS: number;

  constructor(
    private readonly now: () => number,
    options: DnsCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxTtlS = options.maxTtlS ?? 86_400;
    this.maxNegativeTtlS = options.maxNegativeTtlS ?? 900;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): DnsResult<unknown> | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    return e.result;
  }

  put(key: string, result: DnsResult<unknown>): void {
    if (result.kind === 'temporary') return;
    const cap = result.kind === 'ok' ? this.maxTtlS : this.maxNegativeTtlS;
    const ttl = Math.min(result.ttl, cap);
    if (!(ttl > 0)) return;
    this.entries.delete(key);
    this.entries.set(key, { expires: this.now() + ttl * 1000, result });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
