/*
 * The queue manager: leases due entries, routes each pending recipient to a transport (routing/
 * transport.ts), hands local recipients to the local agent one by one and remote ones to the SMTP/LMTP
 * agent in batches per destination, queues the DSNs the outcomes call for, and completes the lease with
 * per-recipient outcomes (deferred ones get a backoff retry time; past the queue lifetime they fail).
 * Woken by kick() after each commit and by a poll timer for retries and expired leases. Never writes
 * without the lease token; exactly-once insertion is the agents' idempotency key. A failed pass is
 * logged and retried: an unfinished lease simply expires.
 */
import type { BatchJob, BatchResult } from '../delivery/smtp/agent.js';
import type { Logger } from '../log/logger.js';
import { splitAddress } from '../policy/address.js';
import type { Transport } from '../routing/transport.js';
import type { Clock, Lease, QueueEntry, QueueRecipient, RecipientOutcome, Store } from '../store/index.js';
import { systemClock } from '../store/api.js';
import { isStoreError } from '../store/index.js';
import type { AgentResult, DeliveryAgent } from './agent.js';
import { expired, retryAt, type BackoffSettings } from './backoff.js';
import type { FreshContent } from './fresh-content.js';
import type { DsnNotifier, NoticeResult } from './dsn-notify.js';
import { originalRecipients, readExpansion } from './meta.js';
import { logDelivery, statusOf } from './delivery-log.js';

export type Router = (address: string) => Transport | Promise<Transport>;

/** Our mailbox domains go to the local agent, everything else by MX (tests; serve uses routing/). */
export function localDomainRouter(domains: { isLocal(domain: string): Promise<boolean> }): Router {
  return async (address) => {
    const split = splitAddress(address);
    if (split && (await domains.isLocal(split.domain))) return { kind: 'local' };
    return { kind: 'smtp', name: 'smtp', nexthop: { host: split?.domain ?? address, port: null, mx: true } };
  };
}

/** What the scheduler needs of the SMTP/LMTP client (src/delivery/smtp/agent.ts). */
export interface BatchAgent {
  deliver(job: BatchJob): Promise<BatchResult>;
}

/** The wait before retrying a recipient deferred by our own store's trouble (AgentResult.storeTrouble). */
export const STORE_RETRY_MS = 10_000;

export const NO_REMOTE_AGENT = '451 4.3.5 remote delivery is not configured on this node';

/** The agent's destination string of a remote transport: smtp:domain, smtp:[host]:port, lmtp:[host]:port, lmtp:unix:/path. */
export function destinationOf(t: Extract<Transport, { kind: 'smtp' | 'lmtp' }>): string {
  if (t.kind === 'lmtp') {
    return t.via.type === 'unix' ? `lmtp:unix:${t.via.path}` : `lmtp:[${t.via.host}]${t.via.port === null ? '' : `:${t.via.port}`}`;
  }
  const { host, port, mx } = t.nexthop;
  const name = mx ? host : `[${host}]`;
  return `smtp:${name}${port === null ? '' : `:${port}`}`;
}

export interface SchedulerOptions {
  store: Store;
  logger: Logger;
  clock?: Clock;
  router: Router;
  local: DeliveryAgent;
  /** the SMTP/LMTP client; without one remote recipients are deferred */
  remote?: BatchAgent | null;
  /** queues bounces, delay warnings and success notices; without one failures are only logged */
  notifier?: DsnNotifier | null;
  /** called with each remote transport before its batch is handed over (relayhost AUTH/TLS lookup) */
  onRemoteTransport?: (destination: string, transport: Extract<Transport, { kind: 'smtp' | 'lmtp' }>) => void;
  /** bytes of entries just committed on this node, used for their first attempt instead of a store read */
  fresh?: FreshContent | null;
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

/** An outcome with what a DSN needs to know about how it came about. */
interface Finished {
  outcome: RecipientOutcome;
  handoff?: NoticeResult['handoff'];
  remoteMta?: string;
}

type Routed =
  | { r: QueueRecipient; kind: 'now'; relay: string; result: AgentResult; hold?: boolean }
  | { r: QueueRecipient; kind: 'local' }
  | { r: QueueRecipient; kind: 'remote'; destination: string };

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
  /** destination domains paused by `cartero queue pause`, as of the last lease round */
  private paused: ReadonlySet<string> = new Set();
  private pausedUntil = 0;

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
    // lease() skips entries whose every pending recipient is paused; mixed entries are deferred per
    // recipient. The pause list is read once per poll interval, not on every round under load.
    const now = this.clock.now();
    if (leases.length > 0 && now >= this.pausedUntil) {
      this.paused = new Set((await this.o.store.queue.pauses()).map((p) => p.domain));
      this.pausedUntil = now + this.o.pollIntervalMs;
    }
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
      const { finished, hold, content } = await this.deliverEntry(entry);
      // Notices are queued before the entry can disappear: a lost lease may repeat one, never lose one.
      await this.notify(entry, finished, content);
      await this.o.store.queue.complete(entry.id, token, finished.map((f) => f.outcome), this.clock.now());
      if (hold) await this.o.store.queue.hold(entry.id).catch((err: unknown) => this.o.logger.warn({ err, queue_id: entry.id }, `${entry.id}: cannot put on hold`));
    } catch (err) {
      const msg = isStoreError(err, 'stale_lease')
        ? `${entry.id}: lease lost before completion; the next holder retries (deliveries already made are not repeated)`
        : `${entry.id}: delivery round failed; retried when the lease expires`;
      this.o.logger.warn({ err, queue_id: entry.id }, msg);
    } finally {
      clearInterval(renewal);
    }
  }

  private async deliverEntry(entry: QueueEntry): Promise<{ finished: Finished[]; hold: boolean; content: () => Promise<Buffer> }> {
    const expansion = readExpansion(entry.meta);
    const kept = this.o.fresh?.take(entry.id);
    let content: Promise<Buffer> | null = kept ? Promise.resolve(kept) : null;
    const ctx: EntryContext = {
      entry,
      origTo: originalRecipients(expansion),
      undeliverable: expansion.undeliverable,
      content: () => (content ??= this.o.store.queue.content(entry.id)),
    };
    const pending = entry.recipients.filter((r) => r.state === 'pending');
    const routed = await Promise.all(pending.map((r) => this.route(ctx, r)));
    const work: Promise<Finished[]>[] = [];
    const batches = new Map<string, QueueRecipient[]>();
    for (const item of routed) {
      if (item.kind === 'now') work.push(Promise.resolve([this.finish(ctx, item.r, item.relay, item.result)]));
      else if (item.kind === 'local') work.push(this.slots.run(() => this.deliverLocal(ctx, item.r)).then((f) => [f]));
      else batches.set(item.destination, [...(batches.get(item.destination) ?? []), item.r]);
    }
    for (const [destination, rcpts] of batches) work.push(this.slots.run(() => this.deliverRemote(ctx, destination, rcpts)));
    const finished = (await Promise.all(work)).flat();
    return { finished, hold: routed.some((i) => i.kind === 'now' && i.hold === true), content: ctx.content };
  }

  /** Decides what happens to one recipient: settled now (undeliverable, error, discard, hold), local, or a remote batch. */
  private async route(ctx: EntryContext, r: QueueRecipient): Promise<Routed> {
    const preset = ctx.undeliverable[r.address];
    if (preset !== undefined) return { r, kind: 'now', relay: 'none', result: { outcome: 'failed', reason: preset } };
    const domain = splitAddress(r.address)?.domain.toLowerCase();
    if (domain !== undefined && this.paused.has(domain)) {
      return { r, kind: 'now', relay: 'none', result: { outcome: 'deferred', reason: `451 4.3.2 delivery to ${domain} is paused by the administrator` } };
    }
    let t: Transport;
    try {
      t = await this.o.router(r.address);
    } catch (err) {
      return { r, kind: 'now', relay: 'none', result: { outcome: 'deferred', reason: `451 4.3.0 routing lookup failed: ${errorText(err)}` } };
    }
    switch (t.kind) {
      case 'local':
        return { r, kind: 'local' };
      case 'error':
        return { r, kind: 'now', relay: 'error', result: { outcome: t.permanent ? 'failed' : 'deferred', reason: `${t.status} ${t.text}` } };
      case 'discard':
        return { r, kind: 'now', relay: 'discard', result: { outcome: 'done', reason: `discarded: ${t.text}` } };
      case 'hold':
        return { r, kind: 'now', relay: 'hold', result: { outcome: 'deferred', reason: `held: ${t.text}` }, hold: true };
      case 'smtp':
      case 'lmtp': {
        if (!this.o.remote) return { r, kind: 'now', relay: 'none', result: { outcome: 'deferred', reason: NO_REMOTE_AGENT } };
        const destination = destinationOf(t);
        this.o.onRemoteTransport?.(destination, t);
        return { r, kind: 'remote', destination };
      }
    }
  }

  private async deliverLocal(ctx: EntryContext, r: QueueRecipient): Promise<Finished> {
    const agent = this.o.local;
    let result: AgentResult;
    try {
      const content = await ctx.content();
      const { entry } = ctx;
      result = await agent.deliver({ queueId: entry.id, sender: entry.sender, recipient: r.address, content, blobId: entry.blobId, now: this.clock.now() });
    } catch (err) {
      result = deferredBy(err);
    }
    return { ...this.finish(ctx, r, agent.relay, result), handoff: 'mailbox' };
  }

  private async deliverRemote(ctx: EntryContext, destination: string, rcpts: QueueRecipient[]): Promise<Finished[]> {
    const { entry } = ctx;
    let batch: BatchResult;
    try {
      const job: BatchJob = {
        queueId: entry.id,
        sender: entry.sender,
        recipients: rcpts.map((r) => ({ address: r.address, orcpt: r.orcpt, notify: r.notify })),
        content: await ctx.content(),
        meta: entry.meta,
        now: this.clock.now(),
        destination,
      };
      batch = await this.o.remote!.deliver(job);
    } catch (err) {
      const result = deferredBy(err);
      return rcpts.map((r) => this.finish(ctx, r, 'none', result));
    }
    return rcpts.map((r) => {
      const result = batch.results.get(r.address) ?? { outcome: 'deferred' as const, reason: '451 4.3.0 no result from the delivery agent' };
      const handoff = batch.handoff.get(r.address);
      // RFC 3464 Remote-MTA is a host name: "mx.example[192.0.2.1]:25" → "mx.example"
      return { ...this.finish(ctx, r, batch.relay, result), ...(handoff ? { handoff } : {}), remoteMta: batch.relay.replace(/\[.*$/, '') };
    });
  }

  private async notify(entry: QueueEntry, finished: Finished[], content: () => Promise<Buffer>): Promise<void> {
    const failed = finished.filter((f) => f.outcome.outcome === 'failed').length;
    if (!this.o.notifier) {
      if (failed > 0) {
        this.o.logger.warn({ queue_id: entry.id, sender: entry.sender, failed }, `${entry.id}: sender non-delivery notification not sent (no notifier configured)`);
      }
      return;
    }
    const results: NoticeResult[] = finished.map((f) => ({
      recipientId: f.outcome.recipientId,
      outcome: f.outcome.outcome,
      reason: f.outcome.reason ?? '',
      ...(f.handoff ? { handoff: f.handoff } : {}),
      ...(f.remoteMta ? { remoteMta: f.remoteMta } : {}),
    }));
    await this.o.notifier.notify(entry, results, content, this.clock.now());
  }

  /** Turns an agent result into a queue outcome (backoff, lifetime) and writes the delivery log line. */
  private finish(ctx: EntryContext, r: QueueRecipient, relay: string, result: AgentResult): Finished {
    const now = this.clock.now();
    const { entry } = ctx;
    let outcome: RecipientOutcome;
    let reason = result.reason;
    // our own notices live by bounce_queue_lifetime, everything else by maximal_queue_lifetime
    const backoff = this.o.notifier?.backoffFor?.(entry, this.o.backoff) ?? this.o.backoff;
    if (result.outcome === 'deferred' && expired(entry.receivedAt, now, backoff)) {
      reason = `message expired after ${Math.round((now - entry.receivedAt) / 1000)}s in the queue: ${reason}`;
      outcome = { recipientId: r.id, outcome: 'failed', reason };
    } else if (result.outcome === 'deferred') {
      const at = retryAt(entry.receivedAt, now, backoff);
      outcome = { recipientId: r.id, outcome: 'deferred', reason, retryAt: result.storeTrouble ? Math.min(at, now + STORE_RETRY_MS) : at };
    } else {
      outcome = { recipientId: r.id, outcome: result.outcome, reason };
    }
    logDelivery(this.o.logger, {
      queueId: entry.id,
      recipient: r.address,
      origTo: ctx.origTo.get(r.address) ?? null,
      relay,
      since: entry.receivedAt,
      now,
      status: statusOf(outcome.outcome),
      reason,
    });
    return { outcome };
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A delivery that threw (the queued bytes could not be read, an agent failed): deferred, soon if the store was down. */
function deferredBy(err: unknown): AgentResult {
  return { outcome: 'deferred', reason: `451 4.3.0 ${errorText(err)}`, storeTrouble: isStoreError(err, 'unavailable') };
}
