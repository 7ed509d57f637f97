/*
 * The picture `cartero cluster status` prints: nodes with their heartbeat age, alive or dead, and the
 * queue leases each holds; leases of owners no registered node claims; queue depth; the holder of
 * each singleton job; PostgreSQL's own view. Reads the store only (any node, or an admin host, can
 * ask). A failing part of the database view is reported in the result rather than thrown; everything
 * else propagates as StoreError. The human form is src/cli/cluster.ts's.
 */
import type { ClusterNode, DatabaseView, JobHolder, QueueCounts, Store } from '../store/api.js';
import { DEFAULT_MISSED_HEARTBEATS } from './node.js';

export interface NodeStatus {
  name: string;
  hostname: string;
  pid: number;
  roles: string[];
  version: string;
  startedAt: number;
  lastHeartbeat: number;
  /** ms since the last heartbeat (0 when the clock of the reader is behind) */
  heartbeatAgeMs: number;
  heartbeatMs: number;
  alive: boolean;
  /** live queue leases whose owner is this node */
  leases: number;
}

export interface ClusterStatus {
  now: number;
  backend: string;
  nodes: NodeStatus[];
  /** live leases whose owner is no registered node (a node pruned meanwhile, or a foreign owner name) */
  otherLeases: { owner: string; count: number }[];
  queue: QueueCounts;
  jobs: JobHolder[];
  database: DatabaseView | { error: string } | null;
}

/** A node is dead once `missed` heartbeat intervals passed without one. */
export function isAlive(node: Pick<ClusterNode, 'lastHeartbeat' | 'heartbeatMs'>, now: number, missed = DEFAULT_MISSED_HEARTBEATS): boolean {
  return now - node.lastHeartbeat <= node.heartbeatMs * missed;
}

/** The lease owner names a node uses: its name, or "<name>:<pid>" (the scheduler's default). */
export function ownsLease(node: Pick<ClusterNode, 'name' | 'pid'>, owner: string): boolean {
  return owner === node.name || owner === `${node.name}:${node.pid}`;
}

export async function clusterStatus(store: Store, now: number, options: { missedHeartbeats?: number } = {}): Promise<ClusterStatus> {
  const [nodes, leases, queue, jobs] = await Promise.all([
    store.cluster.nodes(),
    store.cluster.leases(now),
    store.queue.counts(now),
    store.cluster.jobHolders(),
  ]);
  let database: ClusterStatus['database'];
  try {
    database = await store.cluster.database();
  } catch (err) {
    database = { error: err instanceof Error ? err.message : String(err) };
  }
  const claimed = new Set<string>();
  const statuses = nodes.map((n): NodeStatus => {
    let held = 0;
    for (const l of leases) {
      if (ownsLease(n, l.owner)) {
        held += l.count;
        claimed.add(l.owner);
      }
    }
    return {
      name: n.name,
      hostname: n.hostname,
      pid: n.pid,
      roles: n.roles,
      version: n.version,
      startedAt: n.startedAt,
      lastHeartbeat: n.lastHeartbeat,
      heartbeatAgeMs: Math.max(0, now - n.lastHeartbeat),
      heartbeatMs: n.heartbeatMs,
      alive: isAlive(n, now, options.missedHeartbeats),
      leases: held,
    };
  });
  return {
    now,
    backend: store.backend,
    nodes: statuses,
    otherLeases: leases.filter((l) => !claimed.has(l.owner)),
    queue,
    jobs,
    database,
  };
}

/** "850ms", "42s", "3m05s", "2h10m", "3d": a heartbeat age at a glance. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d`;
}
