/*
 * Runs the cluster's singleton jobs (blob collection, registry pruning…) on exactly one node at a time.
 * Each round (every pollMs on the injected clock) it proves its lock session alive, takes the lock of
 * every job nobody holds, and runs the jobs it holds that are due. A holder that dies loses its
 * session, hence its locks, and another node's next round takes them: failover takes about pollMs
 * (plus the server's detection of a dead connection). A node whose session broke stands back for two
 * rounds before trying again, so a healthy node takes its jobs over. Jobs must stay safe if two holders overlap for a
 * moment (a terminated holder learns of it at its next round), so the lock is about not doing work
 * twice, not about correctness. Job and store failures are logged; the next round tries again.
 */
import type { Logger } from '../log/logger.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import type { JobLocks, Store } from '../store/api.js';
import { checkJobName, checkNodeName } from '../store/cluster-common.js';

export interface SingletonJob {
  /** lowercase letters, digits and . _ - ; the same on every node */
  name: string;
  /** how often the holder runs it */
  intervalMs: number;
  /** One run. May resolve with a line for the log (null/undefined: nothing worth logging). */
  run(now: number): Promise<string | null | undefined | void>;
}

export interface SingletonRunnerOptions {
  store: Store;
  logger: Logger;
  /** this node's name in the registry */
  node: string;
  jobs: readonly SingletonJob[];
  clock?: ServerClock;
  /** how often to check the lock session and look for free jobs; default 5 s */
  pollMs?: number;
}

export const DEFAULT_SINGLETON_POLL_MS = 5_000;

export class SingletonRunner {
  private readonly clock: ServerClock;
  private readonly pollMs: number;
  private session: JobLocks | null = null;
  private readonly nextRun = new Map<string, number>();
  private cancel: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** set while the store cannot be reached, so an outage is logged once */
  private outage = false;
  /** after losing its session, this node stands back until then so that a healthy node takes the jobs */
  private holdOffUntil = 0;

  /** throws StoreError `invalid` for a bad node or job name, or a job name given twice */
  constructor(private readonly o: SingletonRunnerOptions) {
    this.clock = o.clock ?? systemClock;
    this.pollMs = o.pollMs ?? DEFAULT_SINGLETON_POLL_MS;
    checkNodeName(o.node);
    const seen = new Set<string>();
    for (const job of o.jobs) {
      checkJobName(job.name);
      if (seen.has(job.name)) throw new TypeError(`singleton job ${job.name} is listed twice`);
      if (!(job.intervalMs > 0)) throw new TypeError(`singleton job ${job.name}: intervalMs must be positive`);
      seen.add(job.name);
    }
  }

  /** the jobs this node holds now */
  held(): string[] {
    return [...this.nextRun.keys()].sort();
  }

  start(): void {
    if (this.cancel || this.stopped) return;
    void this.tick().then(() => this.schedule());
  }

  /** One round now (the timer calls this; tests may too). Never rejects. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Waits for a running job, then ends the lock session (releasing every lock) so another node takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
    await this.running;
    await this.drop('stopping');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancel = this.clock.schedule(this.pollMs, () => {
      void this.tick().then(() => this.schedule());
    });
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const session = await this.ensureSession();
    if (!session) return;
    for (const job of this.o.jobs) {
      if (this.stopped || this.session !== session) return;
      const now = this.clock.now();
      let holds: boolean;
      try {
        holds = await session.tryAcquire(job.name, now);
      } catch (err) {
        await this.drop(`lock session failed: ${errorText(err)}`);
        return;
      }
      if (this.session !== session) return;
      const had = this.nextRun.has(job.name);
      if (!holds) {
        if (had) {
          this.nextRun.delete(job.name);
          this.o.logger.warn({ node: this.o.node, job: job.name }, `cluster: singleton job ${job.name} is held by another node now`);
        }
        continue;
      }
      if (!had) {
        this.nextRun.set(job.name, now);
        this.o.logger.info({ node: this.o.node, job: job.name }, `cluster: singleton job ${job.name} runs on this node`);
      }
      if (now >= (this.nextRun.get(job.name) ?? now)) await this.runJob(job, now);
    }
  }

  private async runJob(job: SingletonJob, now: number): Promise<void> {
    this.nextRun.set(job.name, now + job.intervalMs);
    const started = this.clock.now();
    try {
      const line = await job.run(now);
      if (line) this.o.logger.info({ node: this.o.node, job: job.name, ms: this.clock.now() - started }, `cluster: ${job.name}: ${line}`);
    } catch (err) {
      this.o.logger.warn({ node: this.o.node, job: job.name, err: errorText(err) }, `cluster: singleton job ${job.name} failed; retrying at its next interval`);
    }
  }

  /** The open lock session, opening one if needed; null when the store cannot be reached. */
  private async ensureSession(): Promise<JobLocks | null> {
    if (this.session) {
      try {
        await this.session.check();
        return this.session;
      } catch (err) {
        await this.drop(`lock session lost: ${errorText(err)}`);
      }
    }
    if (this.clock.now() < this.holdOffUntil) return null;
    try {
      this.session = await this.o.store.cluster.openJobLocks(this.o.node);
      if (this.outage) this.o.logger.info({ node: this.o.node }, 'cluster: lock session open again');
      this.outage = false;
      return this.session;
    } catch (err) {
      if (!this.outage) this.o.logger.warn({ node: this.o.node, err: errorText(err) }, 'cluster: cannot open a lock session for singleton jobs; retrying');
      this.outage = true;
      return null;
    }
  }

  /** Forgets every lock (the session ends, so the database forgets them too). */
  private async drop(reason: string): Promise<void> {
    const session = this.session;
    this.session = null;
    if (reason !== 'stopping') this.holdOffUntil = this.clock.now() + 2 * this.pollMs;
    const jobs = this.held();
    this.nextRun.clear();
    if (jobs.length > 0 && reason !== 'stopping') {
      this.o.logger.warn({ node: this.o.node, jobs: jobs.join(','), reason }, `cluster: singleton jobs ${jobs.join(', ')} released: ${reason}`);
    }
    await session?.close();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
