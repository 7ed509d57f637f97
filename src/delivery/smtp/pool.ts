/*
 * Per-destination bookkeeping for the SMTP agent: a concurrency limit (so one slow or huge destination
 * cannot take every delivery slot), the "site is down" memory (after N consecutive attempts that never
 * got a greeting, new jobs for that destination are deferred at once for a backoff period, as Postfix's
 * dead-destination throttling does), and the cache of idle connections kept for reuse. On a cluster the
 * concurrency limit also holds across nodes (a shared gate, src/cluster/destination-slots.ts).
 */
import { isSlotHold, type SharedSlotGate } from '../../cluster/destination-slots.js';
import type { ServerClock } from '../../net/clock.js';
import type { SmtpConnection } from './client.js';

export class DestinationSlots {
  private readonly state = new Map<string, { busy: number; waiting: (() => void)[] }>();

  /**
   * `shared`: on a cluster, the limit across every node (src/cluster/destination-slots.ts), taken after
   * a local slot: the local line keeps this node's waiters in order and bounds its database polling.
   */
  constructor(
    private readonly limit: (key: string) => number,
    private readonly shared: SharedSlotGate | null = null,
  ) {}

  /** Runs `fn` holding a slot of `key`; `busy(reason)` instead when the cluster had none free in time. */
  async run<T>(key: string, fn: () => Promise<T>, busy?: (reason: string) => T): Promise<T> {
    let s = this.state.get(key);
    if (!s) {
      s = { busy: 0, waiting: [] };
      this.state.set(key, s);
    }
    const entry = s;
    const limit = Math.max(1, this.limit(key));
    if (entry.busy < limit) entry.busy++;
    else await new Promise<void>((resolve) => entry.waiting.push(resolve));
    try {
      if (!this.shared) return await fn();
      const got = await this.shared.acquire(key, limit);
      if (!isSlotHold(got)) {
        if (busy) return busy(got.busy);
        throw new Error(got.busy);
      }
      try {
        return await fn();
      } finally {
        await got.release();
      }
    } finally {
      const next = entry.waiting.shift();
      if (next) next();
      else if (--entry.busy === 0) this.state.delete(key);
    }
  }

  busy(key: string): number {
    return this.state.get(key)?.busy ?? 0;
  }
}

export interface SiteDownSettings {
  /** consecutive dead attempts before the destination is suspended; default 3 */
  failures: number;
  /** how long it stays suspended, ms; default 60000 */
  backoffMs: number;
}

export class SiteHealth {
  private readonly sites = new Map<string, { failures: number; downUntil: number; reason: string }>();

  constructor(
    private readonly clock: ServerClock,
    private readonly settings: SiteDownSettings,
  ) {}

  /** The reason new jobs are deferred at once, or null when the destination may be tried. */
  down(key: string): string | null {
    const s = this.sites.get(key);
    if (!s || s.downUntil <= this.clock.now()) return null;
    return s.reason;
  }

  /** Records a delivery that never got a greeting from any host; true when this suspends the site. */
  dead(key: string, reason: string): boolean {
    const s = this.sites.get(key) ?? { failures: 0, downUntil: 0, reason };
    s.failures++;
    s.reason = reason;
    this.sites.set(key, s);
    if (s.failures >= this.settings.failures && s.downUntil <= this.clock.now()) {
      s.downUntil = this.clock.now() + this.settings.backoffMs;
      s.failures = 0;
      return true;
    }
    return false;
  }

  alive(key: string): void {
    this.sites.delete(key);
  }
}

export interface ConnectionCacheSettings {
  /** idle connections kept in all; 0 disables reuse; default 20 */
  maxConnections: number;
  /** how long an idle connection is kept, ms; default 5000 */
  idleMs: number;
}

export class ConnectionCache {
  private readonly idle = new Map<string, { conn: SmtpConnection; cancel: () => void }[]>();
  private count = 0;

  constructor(
    private readonly clock: ServerClock,
    private readonly settings: ConnectionCacheSettings,
  ) {}

  get size(): number {
    return this.count;
  }

  /** An idle connection to `key`, or null (dead ones are dropped on the way). */
  take(key: string): SmtpConnection | null {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const item = list.pop()!;
      this.count--;
      item.cancel();
      if (list.length === 0) this.idle.delete(key);
      if (!item.conn.broken) return item.conn;
    }
    return null;
  }

  /** Keeps `conn` for reuse, or says goodbye when the cache is full or disabled. */
  put(key: string, conn: SmtpConnection): void {
    if (conn.broken) return;
    if (this.count >= this.settings.maxConnections) {
      void conn.quit();
      return;
    }
    const list = this.idle.get(key) ?? [];
    const item = {
      conn,
      cancel: this.clock.schedule(this.settings.idleMs, () => {
        const l = this.idle.get(key);
        const i = l?.indexOf(item) ?? -1;
        if (l && i >= 0) {
          l.splice(i, 1);
          this.count--;
          if (l.length === 0) this.idle.delete(key);
        }
        void conn.quit();
      }),
    };
    list.push(item);
    this.idle.set(key, list);
    this.count++;
  }

  async closeAll(): Promise<void> {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    this.count = 0;
    await Promise.all(
      all.map((item) => {
        item.cancel();
        return item.conn.quit();
      }),
    );
  }
}
