/*
 * The queue manager: leases due entries, hands each pending recipient to the delivery agent its route
 * names, and completes the lease with per-recipient outcomes (deferred ones get a backoff retry time;
 * past the queue lifetime they fail). Woken by kick() after each commit and by a poll timer for retries
 * and expired leases. Never writes without the lease token; exactly-once insertion is the agents'
 * idempotency key. A failed pass is logged and retried: an unfinished lease simply expires.
 */
import type { Logger } from '../log/logger.js';
import { splitAddress } from '../policy/address.js';
import type { Clock, Lease, QueueEntry, QueueRecipient, RecipientOutcome, Store } from '../store/index.js';
import { systemClock } from '../store/api.js';
import { isStoreError } from '../store/index.js';
import type { AgentResult, DeliveryAgent } from './agent.js';
import { expired, retryAt, type BackoffSettings } from './backoff.js';
import { originalRecipients, readExpansion } from './meta.js';

export type Route = 'local' | 'deferred-nonlocal';
export type Router = (address: string) => Route | Promise<Route>;

/** For now: our mailbox domains go to the local agent, everything else waits for the routing issue. */
export function localDomainRouter(domains: { isLocal(domain: string): Promise<boolean> }): Router {
  return async (address) => {
    const split = splitAddress(address);
    return split && (await domains.isLocal(split.domain)) ? 'local' : 'deferred-nonlocal';
  };
}

export const REMOTE_NOT_IMPLEMENTED = '451 4.4.0 remote delivery not implemented yet';

export interface SchedulerOptions {
  store: Store;
  logger: Logger;
  clock?: Clock;
  router: Router;
  local: DeliveryAgent;
  /** lease owner name shown by the admin view, e.g. "<hostname>:<pid>" */
  owner: string;
  /** deliveries at once, and entries leased at once */
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  backoff: BackoffSettings;
}

/** A counting semaphore: at most `n` deliveries run at once, the rest wait in order. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

interface EntryContext {
  entry: QueueEntry;
  origTo: Map<string, string>;
  undeliverable: Record<string, string>;
  content: () => Promise<Buffer>;
}

export class QueueScheduler {
  private readonly clock: Clock;
  private readonly slots: Slots;
  private readonly inflight = new Set<Promise<void>>();
  private started = false;
  private stopping = false;
  private passing: Promise<void> | null = null;
  private again = false;
  /** the last lease round filled every free slot: more may be due when a slot frees up */
  private backlog = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: SchedulerOptions) {
    this.clock = o.clock ?? systemClock;
    this.slots = new Slots(o.concurrency);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.timer = setInterval(() => this.kick(), this.o.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Look for due entries now (after a commit, a requeue, a freed slot). Coalesces concurrent calls. */
  kick(): void {
    if (!this.started || this.stopping) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = this.pass()
      .catch((err: unknown) => this.o.logger.warn({ err }, 'queue scan failed; retrying at the next poll'))
      .finally(() => {
        this.passing = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Stops leasing, lets deliveries in flight finish and complete. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.passing;
    await Promise.all([...this.inflight]);
    this.started = false;
  }

  /** One lease round that waits for its deliveries (tests and `cartero queue flush`); returns the entries handled. */
  async runOnce(): Promise<number> {
    const leases = await this.lease();
    await Promise.all(leases.map((l) => this.track(l)));
    return leases.length;
  }

  /** Resolves when no scan and no delivery is running (tests). */
  async idle(): Promise<void> {
    while (this.passing || this.inflight.size > 0) {
      await this.passing;
      await Promise.all([...this.inflight]);
    }
  }

  private async pass(): Promise<void> {
    for (const l of await this.lease()) void this.track(l);
  }

  private async lease(): Promise<Lease[]> {
    const free = this.o.concurrency - this.inflight.size;
    if (free <= 0) return [];
    const leases = await this.o.store.queue.lease({ owner: this.o.owner, limit: free, leaseMs: this.o.leaseMs, now: this.clock.now() });
    this.backlog = leases.length === free;
    return leases;
  }

  private track(lease: Lease): Promise<void> {
    const p = this.processLease(lease).finally(() => {
      this.inflight.delete(p);
      if (this.backlog) this.kick();
    });
    this.inflight.add(p);
    return p;
  }

  private async processLease(lease: Lease): Promise<void> {
    const { entry, token } = lease;
    // Renewed while deliveries run, so a slow mailbox does not let another worker take the entry.
    const renewal = setInterval(() => {
      this.o.store.queue.renew(entry.id, token, this.o.leaseMs, this.clock.now()).catch((err: unknown) => {
        this.o.logger.warn({ err, queue_id: entry.id }, `${entry.id}: lease renewal failed`);
      });
    }, Math.max(250, Math.floor(this.o.leaseMs / 3)));
    renewal.unref();
    try {
      const outcomes = await this.deliverEntry(entry);
      await this.o.store.queue.complete(entry.id, token, outcomes, this.clock.now());
      this.noteBounces(entry, outcomes);
    } catch (err) {
      const msg = isStoreError(err, 'stale_lease')
        ? `${entry.id}: lease lost before completion; the next holder retries (deliveries already made are not repeated)`
        : `${entry.id}: delivery round failed; retried when the lease expires`;
      this.o.logger.warn({ err, queue_id: entry.id }, msg);
    } finally {
      clearInterval(renewal);
    }
  }

  private deliverEntry(entry: QueueEntry): Promise<RecipientOutcome[]> {
    const expansion = readExpansion(entry.meta);
    let content: Promise<Buffer> | null = null;
    const ctx: EntryContext = {
      entry,
      origTo: originalRecipients(expansion),
      undeliverable: expansion.undeliverable,
      content: () => (content ??= this.o.store.queue.content(entry.id)),
    };
    const pending = entry.recipients.filter((r) => r.state === 'pending');
    return Promise.all(pending.map((r) => this.slots.run(() => this.deliverRecipient(ctx, r))));
  }

  private async deliverRecipient(ctx: EntryContext, r: QueueRecipient): Promise<RecipientOutcome> {
    const preset = ctx.undeliverable[r.address];
    if (preset !== undefined) return this.finish(ctx, r, 'none', { outcome: 'failed', reason: preset });
    let route: Route;
    try {
      route = await this.o.router(r.address);
    } catch (err) {
      return this.finish(ctx, r, 'none', { outcome: 'deferred', reason: `451 4.3.0 routing lookup failed: ${errorText(err)}` });
    }
    if (route !== 'local') return this.finish(ctx, r, 'none', { outcome: 'deferred', reason: REMOTE_NOT_IMPLEMENTED });
    const agent = this.o.local;
    let result: AgentResult;
    try {
      const content = await ctx.content();
      const job = { queueId: ctx.entry.id, sender: ctx.entry.sender, recipient: r.address, content, now: this.clock.now() };
      result = await agent.deliver(job);
    } catch (err) {
      result = { outcome: 'deferred', reason: `451 4.3.0 ${errorText(err)}` };
    }
    return this.finish(ctx, r, agent.relay, result);
  }

  /** Turns an agent result into a queue outcome (backoff, lifetime) and writes the delivery log line. */
  private finish(ctx: EntryContext, r: QueueRecipient, relay: string, result: AgentResult): RecipientOutcome {
    const now = this.clock.now();
    const { entry } = ctx;
    let outcome: RecipientOutcome;
    let reason = result.reason;
    if (result.outcome === 'deferred' && expired(entry.receivedAt, now, this.o.backoff)) {
      reason = `message expired after ${Math.round((now - entry.receivedAt) / 1000)}s in the queue: ${reason}`;
      outcome = { recipientId: r.id, outcome: 'failed', reason };
    } else if (result.outcome === 'deferred') {
      outcome = { recipientId: r.id, outcome: 'deferred', reason, retryAt: retryAt(entry.receivedAt, now, this.o.backoff) };
    } else {
      outcome = { recipientId: r.id, outcome: result.outcome, reason };
    }
    const status = outcome.outcome === 'done' ? 'sent' : outcome.outcome === 'failed' ? 'bounced' : 'deferred';
    const origTo = ctx.origTo.get(r.address) ?? null;
    const delay = Math.round((now - entry.receivedAt) / 10) / 100;
    const orig = origTo === null ? '' : `, orig_to=<${origTo}>`;
    this.o.logger.info(
      { queue_id: entry.id, recipient: r.address, orig_to: origTo ?? undefined, relay, delay, status, reason },
      `${entry.id}: to=<${r.address}>${orig}, relay=${relay}, delay=${delay}, status=${status} (${reason})`,
    );
    return outcome;
  }

  private noteBounces(entry: QueueEntry, outcomes: RecipientOutcome[]): void {
    const failed = outcomes.filter((o) => o.outcome === 'failed').length;
    if (failed === 0) return;
    // DSN generation comes with the routing issue; until then the failure is only logged.
    const why = entry.sender === '' ? 'null sender: never bounce a bounce' : 'DSN generation not implemented yet';
    this.o.logger.warn(
      { queue_id: entry.id, sender: entry.sender, failed },
      `${entry.id}: sender non-delivery notification not sent (${why})`,
    );
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
