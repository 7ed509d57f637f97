/*
 * Cluster operations of the embedded backend: the registry of the one node that uses this store, and
 * who runs each singleton job. There is nothing to elect on one node, so job locks are always granted
 * (the store's main-thread half does that); these rows only let `cartero cluster status` show the
 * same picture as on PostgreSQL. Synchronous, inside the worker's transaction; errors are StoreErrors.
 */
import type { ClusterNode, JobHolder, NodeInfo } from '../../api.js';
import { StoreError } from '../../errors.js';
import { type OpContext, stmt } from './context.js';

interface NodeRow {
  name: string;
  incarnation: string;
  hostname: string;
  pid: number;
  roles: string;
  version: string;
  heartbeat_ms: number;
  started_at: number;
  last_heartbeat: number;
}

const toNode = (r: NodeRow): ClusterNode => ({
  name: r.name,
  incarnation: r.incarnation,
  hostname: r.hostname,
  pid: r.pid,
  roles: JSON.parse(r.roles) as string[],
  version: r.version,
  heartbeatMs: r.heartbeat_ms,
  startedAt: r.started_at,
  lastHeartbeat: r.last_heartbeat,
});

/** Arguments arrive checked (src/store/cluster-common.ts) from the main thread. */
export function clusterOps(ctx: OpContext) {
  return {
    register(n: NodeInfo, incarnation: string, now: number): ClusterNode {
      stmt(
        ctx,
        `INSERT INTO cluster_nodes (name, incarnation, hostname, pid, roles, version, heartbeat_ms, started_at, last_heartbeat)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation, hostname = excluded.hostname, pid = excluded.pid,
           roles = excluded.roles, version = excluded.version, heartbeat_ms = excluded.heartbeat_ms,
           started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat`,
      ).run(n.name, incarnation, n.hostname, n.pid, JSON.stringify(n.roles), n.version, n.heartbeatMs, now, now);
      return toNode(stmt(ctx, 'SELECT * FROM cluster_nodes WHERE name = ?').get(n.name) as NodeRow);
    },
    heartbeat(name: string, incarnation: string, now: number): void {
      const row = stmt(ctx, 'SELECT incarnation FROM cluster_nodes WHERE name = ?').get(name) as { incarnation: string } | undefined;
      if (!row) throw new StoreError('not_found', `cluster: node ${name} is not registered`);
      if (row.incarnation !== incarnation) throw new StoreError('conflict', `cluster: node ${name} was registered again by another process`);
      stmt(ctx, 'UPDATE cluster_nodes SET last_heartbeat = max(last_heartbeat, ?) WHERE name = ?').run(now, name);
    },
    deregister(name: string, incarnation: string): void {
      stmt(ctx, 'DELETE FROM cluster_nodes WHERE name = ? AND incarnation = ?').run(name, incarnation);
    },
    nodes(): ClusterNode[] {
      return (stmt(ctx, 'SELECT * FROM cluster_nodes ORDER BY name').all() as NodeRow[]).map(toNode);
    },
    prune(before: number): string[] {
      const rows = stmt(ctx, 'DELETE FROM cluster_nodes WHERE last_heartbeat < ? RETURNING name').all(before) as { name: string }[];
      return rows.map((r) => r.name).sort();
    },
    leases(now: number): { owner: string; count: number }[] {
      return stmt(
        ctx,
        `SELECT lease_owner AS owner, count(*) AS count FROM queue
          WHERE lease_owner IS NOT NULL AND lease_expires_at > ? GROUP BY lease_owner ORDER BY lease_owner`,
      ).all(now) as { owner: string; count: number }[];
    },
    jobHolders(): JobHolder[] {
      return stmt(ctx, 'SELECT name AS job, holder_node AS node, acquired_at AS since FROM cluster_jobs ORDER BY name').all() as JobHolder[];
    },
    setHolder(job: string, node: string, now: number): void {
      stmt(
        ctx,
        `INSERT INTO cluster_jobs (name, holder_node, acquired_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder_node = excluded.holder_node, acquired_at = excluded.acquired_at`,
      ).run(job, node, now);
    },
    clearHolder(job: string, node: string): void {
      stmt(ctx, 'UPDATE cluster_jobs SET holder_node = NULL, acquired_at = NULL WHERE name = ? AND holder_node = ?').run(job, node);
    },
  };
}
