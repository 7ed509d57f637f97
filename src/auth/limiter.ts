/*
 * Authentication failures per client address, shared by all sessions of one server of any protocol (a client that
 * reconnects is still counted). Owns only counters in memory: bounded in the number of addresses kept
 * (oldest forgotten first) and in timestamps per address. Never throws.
 */

export interface AuthLimiterOptions {
  /** failures within the window that get the client disconnected */
  maxFailures: number;
  windowMs: number;
  /** addresses remembered at most */
  maxAddresses?: number;
}

export class AuthLimiter {
  private failures = new Map<string, number[]>();
  private readonly maxAddresses: number;

  constructor(private readonly options: AuthLimiterOptions) {
    this.maxAddresses = options.maxAddresses ?? 100_000;
  }

  private recent(address: string, now: number): number[] {
    const list = (this.failures.get(address) ?? []).filter((t) => t > now - this.options.windowMs);
    if (list.length === 0) this.failures.delete(address);
    else this.failures.set(address, list);
    return list;
  }

  /** The client has used up its failures for now. */
  blocked(address: string, now: number): boolean {
    return this.recent(address, now).length >= this.options.maxFailures;
  }

  /** Records a failure; true when the client is now blocked. */
  fail(address: string, now: number): boolean {
    const list = this.recent(address, now);
    list.push(now);
    if (list.length > this.options.maxFailures) list.shift();
    this.failures.delete(address);
    this.failures.set(address, list);
    if (this.failures.size > this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    return list.length >= this.options.maxFailures;
  }

  /** A successful login does not reset the count: guessing one password must not hide the others. */
  get size(): number {
    return this.failures.size;
  }
}
