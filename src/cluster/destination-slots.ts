/*
 * Cluster-wide per-destination concurrency (smtp_client.destination_concurrency on the postgres
 * backend): before a delivery connects, it takes one of the destination's `limit` slot rows in the
 * shared store (DestinationSlotStore) and holds it under a lease it renews; it frees the slot when done.
 * A node that dies loses its slots when their lease runs out.
 *
 * When every slot is held the delivery waits, as Postfix's queue manager keeps a recipient in its
 * active queue until the destination has a free process, rather than deferring it: the waiters of one
 * destination on this node form a line and only the first polls the database (backing off from
 * `pollMs.min` to `pollMs.max`, and at once when a slot of ours frees), so waiting costs one query per
 * destination and node per poll. A waiter still without a slot after `waitMs` gives up with `busy`, and
 * the caller defers the recipients (4.4.5); so does one that cannot reach the database.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import type { DestinationSlotStore } from '../store/api.js';

export interface SlotHold {
  readonly slot: number;
  release(): Promise<void>;
}

export type SlotOutcome = SlotHold | { busy: string };

/** What the SMTP agent's per-destination limiter asks of a cluster-wide one (src/delivery/smtp/pool.ts). */
export interface SharedSlotGate {
  acquire(destination: string, limit: number): Promise<SlotOutcome>;
}

export interface ClusterSlotOptions {
  store: DestinationSlotStore;
  /** shown in the table, e.g. "<hostname>:<pid>" */
  owner: string;
  logger: Logger;
  clock?: ServerClock;
  /** a slot's lease, renewed every third of it while held; default 60 s */
  leaseMs?: number;
  /** how long a delivery waits for a slot before it is deferred; default 60 s */
  waitMs?: number;
  pollMs?: { min: number; max: number };
}

interface Waiter {
  limit: number;
  since: number;
  resolve: (o: SlotOutcome) => void;
}

interface Line {
  waiters: Waiter[];
  /** cuts the poller's sleep short (a slot of ours was freed) */
  wake: (() => void) | null;
}

export function isSlotHold(o: SlotOutcome): o is SlotHold {
  return 'release' in o;
}

export class ClusterSlotGate implements SharedSlotGate {
  private readonly clock: ServerClock;
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly pollMs: { min: number; max: number };
  private readonly lines = new Map<string, Line>();
  private renewFailed = false;

  constructor(private readonly o: ClusterSlotOptions) {
    this.clock = o.clock ?? systemClock;
    this.leaseMs = o.leaseMs ?? 60_000;
    this.waitMs = o.waitMs ?? 60_000;
    this.pollMs = o.pollMs ?? { min: 50, max: 1_000 };
  }

  async acquire(destination: string, limit: number): Promise<SlotOutcome> {
    const line = this.lines.get(destination);
    if (!line) {
      // nobody of ours is waiting: try at once
      const first = await this.take(destination, limit);
      if (first !== null) return first;
    }
    return new Promise<SlotOutcome>((resolve) => {
      const l = this.lines.get(destination) ?? { waiters: [], wake: null };
      l.waiters.push({ limit, since: this.clock.now(), resolve });
      if (!this.lines.has(destination)) {
        this.lines.set(destination, l);
        void this.poll(destination, l);
      }
    });
  }

  /** One attempt: a hold, null when every slot is held, or busy when the database cannot be asked. */
  private async take(destination: string, limit: number): Promise<SlotOutcome | null> {
    const holder = randomUUID();
    let slot: number | null;
    try {
      slot = await this.o.store.acquire({ destination, limit, owner: this.o.owner, holder, leaseMs: this.leaseMs, now: this.clock.now() });
    } catch (err) {
      return { busy: `4.4.5 cannot take a delivery slot for ${destination}: ${err instanceof Error ? err.message : String(err)}` };
    }
    return slot === null ? null : this.hold(destination, slot, holder);
  }

  private hold(destination: string, slot: number, holder: string): SlotHold {
    let released = false;
    const renew = (): void => {
      cancel = this.clock.schedule(Math.max(250, Math.floor(this.leaseMs / 3)), () => {
        if (released) return;
        this.o.store.renew(destination, slot, holder, this.leaseMs, this.clock.now()).then(
          (mine) => {
            if (!mine) this.o.logger.warn({ destination, slot }, `destination slot ${destination}#${slot} was lost (lease ran out); the limit may be exceeded once`);
            this.renewFailed = false;
          },
          (err: unknown) => {
            if (!this.renewFailed) this.o.logger.warn({ err, destination, slot }, `destination slot ${destination}#${slot}: lease renewal failed`);
            this.renewFailed = true;
          },
        );
        renew();
      });
    };
    let cancel: () => void = () => undefined;
    renew();
    return {
      slot,
      release: async () => {
        if (released) return;
        released = true;
        cancel();
        // a failed release (database away) leaves a row that expires with its lease
        await this.o.store.release(destination, slot, holder).catch((err: unknown) => this.o.logger.warn({ err, destination, slot }, `destination slot ${destination}#${slot}: release failed; it expires with its lease`));
        this.lines.get(destination)?.wake?.();
      },
    };
  }

  /** The first waiter of a line polls for all of them, in order, until the line is empty. */
  private async poll(destination: string, line: Line): Promise<void> {
    let delay = this.pollMs.min;
    while (line.waiters.length > 0) {
      const head = line.waiters[0]!;
      if (this.clock.now() - head.since >= this.waitMs) {
        line.waiters.shift();
        this.o.logger.info({ destination, status: 'deferred' }, `${destination}: no delivery slot free within ${Math.round(this.waitMs / 1000)} s (cluster-wide destination_concurrency ${head.limit})`);
        head.resolve({ busy: `4.4.5 ${destination}: all ${head.limit} delivery slots of the cluster stayed busy for ${Math.round(this.waitMs / 1000)} s` });
        continue;
      }
      const got = await this.take(destination, head.limit);
      if (got !== null) {
        line.waiters.shift();
        head.resolve(got);
        delay = this.pollMs.min;
        continue;
      }
      await new Promise<void>((resolve) => {
        const cancel = this.clock.schedule(delay + Math.floor(Math.random() * delay), () => {
          line.wake = null;
          resolve();
        });
        line.wake = () => {
          line.wake = null;
          cancel();
          resolve();
        };
      });
      delay = Math.min(this.pollMs.max, delay * 2);
    }
    this.lines.delete(destination);
  }
}
