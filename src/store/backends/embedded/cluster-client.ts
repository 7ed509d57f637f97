/*
 * The main-thread half of the embedded cluster store: checks arguments before they cross to the worker
 * and grants every job lock to the local node, since an embedded store serves one node only.
 * Errors are StoreErrors (`invalid` for bad names, `unavailable` after the lock session is closed).
 */
import { randomUUID } from 'node:crypto';
import type { ClusterStore, JobLocks } from '../../api.js';
import { checkJobName, checkNodeInfo, checkNodeName } from '../../cluster-common.js';
import { StoreError } from '../../errors.js';
import type { Remote } from './rpc.js';

class LocalJobLocks implements JobLocks {
  private readonly held = new Set<string>();
  private closed = false;

  constructor(
    private readonly ops: Remote<'cluster'>,
    private readonly node: string,
  ) {}

  async tryAcquire(job: string, now: number): Promise<boolean> {
    checkJobName(job);
    await this.check();
    if (!this.held.has(job)) {
      await this.ops.setHolder(job, this.node, now);
      this.held.add(job);
    }
    return true;
  }

  async release(job: string): Promise<void> {
    if (this.held.delete(job)) await this.ops.clearHolder(job, this.node);
  }

  async check(): Promise<void> {
    if (this.closed) throw new StoreError('unavailable', 'cluster: lock session closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    const jobs = [...this.held];
    this.held.clear();
    await Promise.all(jobs.map((job) => this.ops.clearHolder(job, this.node).catch(() => {})));
  }
}

export function embeddedCluster(ops: Remote<'cluster'>): ClusterStore {
  return {
    // async, so a bad argument is a rejected promise as on PostgreSQL, never a synchronous throw
    register: async (node, now) => ops.register(checkNodeInfo(node), randomUUID(), now),
    heartbeat: async (name, incarnation, now) => ops.heartbeat(checkNodeName(name), incarnation, now),
    deregister: async (name, incarnation) => ops.deregister(checkNodeName(name), incarnation),
    nodes: () => ops.nodes(),
    prune: (before) => ops.prune(before),
    leases: (now) => ops.leases(now),
    jobHolders: () => ops.jobHolders(),
    openJobLocks: async (node) => new LocalJobLocks(ops, checkNodeName(node)),
    database: async () => null,
  };
}
