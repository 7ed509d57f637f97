/*
 * Cluster membership and singleton job locks on PostgreSQL. The node registry is a plain table
 * (cluster_nodes); a job lock is a session-level advisory lock (JOB_LOCK_NAMESPACE, key of the name)
 * held on a dedicated connection, so a node that dies loses its locks with its connection and nobody
 * has to clean up after it. Which node holds a job is read from pg_locks, never trusted from a row alone.
 * Errors are StoreErrors; a lock session whose connection failed is lost for good (check() says so)
 * and the caller opens a new one.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ClusterNode, ClusterStore, DatabaseView, DestinationSlotStore, JobHolder, JobLocks, NodeInfo } from '../../api.js';
import { checkJobName, checkNodeInfo, checkNodeName, JOB_LOCK_NAMESPACE, jobLockKey } from '../../cluster-common.js';
import { isStoreError, StoreError } from '../../errors.js';
import type { Db } from './db.js';
import { PgDestinationSlots } from './destination-slots.js';
import { toStoreError } from './errors.js';
import { isConnectionFailure } from './failover.js';

interface NodeRow {
  name: string;
  incarnation: string;
  hostname: string;
  pid: number;
  roles: string[];
  version: string;
  heartbeat_ms: number;
  started_at: number;
  last_heartbeat: number;
}

const NODE_COLUMNS = 'name, incarnation, hostname, pid, roles, version, heartbeat_ms, started_at, last_heartbeat';

function toNode(r: NodeRow): ClusterNode {
  return {
    name: r.name,
    incarnation: r.incarnation,
    hostname: r.hostname,
    pid: r.pid,
    roles: r.roles,
    version: r.version,
    heartbeatMs: r.heartbeat_ms,
    startedAt: r.started_at,
    lastHeartbeat: r.last_heartbeat,
  };
}

/** How long a statement on the lock connection may take before the session is given up as lost. */
const LOCK_QUERY_TIMEOUT_MS = 10_000;

export class PgCluster implements ClusterStore {
  readonly destinationSlots: DestinationSlotStore;

  constructor(private readonly db: Db) {
    this.destinationSlots = new PgDestinationSlots(db);
  }

  async register(info: NodeInfo, now: number): Promise<ClusterNode> {
    const n = checkNodeInfo(info);
    const rows = await this.db.query<NodeRow>(
      'cluster.register',
      `INSERT INTO cluster_nodes (${NODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
       ON CONFLICT (name) DO UPDATE SET incarnation = EXCLUDED.incarnation, hostname = EXCLUDED.hostname, pid = EXCLUDED.pid,
         roles = EXCLUDED.roles, version = EXCLUDED.version, heartbeat_ms = EXCLUDED.heartbeat_ms,
         started_at = EXCLUDED.started_at, last_heartbeat = EXCLUDED.last_heartbeat
       RETURNING ${NODE_COLUMNS}`,
      [n.name, randomUUID(), n.hostname, n.pid, n.roles, n.version, n.heartbeatMs, now],
    );
    const row = rows[0];
    if (!row) throw new StoreError('unavailable', `cluster: registering ${n.name} returned nothing`);
    return toNode(row);
  }

  async heartbeat(name: string, incarnation: string, now: number): Promise<void> {
    checkNodeName(name);
    // the CTE's UPDATE and the SELECT see the same snapshot: `current` is the incarnation before the update
    const rows = await this.db.query<{ updated: number; current: string | null }>(
      'cluster.heartbeat',
      `WITH upd AS (
         UPDATE cluster_nodes SET last_heartbeat = GREATEST(last_heartbeat, $3) WHERE name = $1 AND incarnation = $2 RETURNING 1
       )
       SELECT (SELECT count(*) FROM upd) AS updated, (SELECT incarnation FROM cluster_nodes WHERE name = $1) AS current`,
      [name, incarnation, now],
    );
    const row = rows[0];
    if (row && row.updated > 0) return;
    if (!row || row.current === null) throw new StoreError('not_found', `cluster: node ${name} is not registered`);
    throw new StoreError('conflict', `cluster: node ${name} was registered again by another process`);
  }

  async deregister(name: string, incarnation: string): Promise<void> {
    checkNodeName(name);
    await this.db.query('cluster.deregister', 'DELETE FROM cluster_nodes WHERE name = $1 AND incarnation = $2', [name, incarnation]);
  }

  async nodes(): Promise<ClusterNode[]> {
    const rows = await this.db.query<NodeRow>('cluster.nodes', `SELECT ${NODE_COLUMNS} FROM cluster_nodes ORDER BY name`);
    return rows.map(toNode);
  }

  async prune(before: number): Promise<string[]> {
    const rows = await this.db.query<{ name: string }>('cluster.prune', 'DELETE FROM cluster_nodes WHERE last_heartbeat < $1 RETURNING name', [before]);
    return rows.map((r) => r.name).sort();
  }

  async leases(now: number): Promise<{ owner: string; count: number }[]> {
    return this.db.query<{ owner: string; count: number }>(
      'cluster.leases',
      `SELECT lease_owner AS owner, count(*) AS count FROM queue_entries
        WHERE lease_owner IS NOT NULL AND lease_expires_at > $1 GROUP BY lease_owner ORDER BY lease_owner`,
      [now],
    );
  }

  async jobHolders(): Promise<JobHolder[]> {
    // a holder counts only while pg_locks shows its backend holding the job's advisory lock in this database
    const rows = await this.db.query<{ job: string; node: string | null; since: number | null }>(
      'cluster.jobHolders',
      `SELECT j.name AS job,
              CASE WHEN l.pid IS NULL THEN NULL ELSE j.holder_node END AS node,
              CASE WHEN l.pid IS NULL THEN NULL ELSE j.acquired_at END AS since
         FROM cluster_jobs j
         LEFT JOIN pg_locks l
           ON l.locktype = 'advisory' AND l.granted AND l.pid = j.holder_pid AND l.objsubid = 2
          AND l.classid = $1::int::oid AND l.objid = j.lock_key::oid
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY j.name`,
      [JOB_LOCK_NAMESPACE],
    );
    return rows;
  }

  async openJobLocks(node: string): Promise<JobLocks> {
    return PgJobLocks.open(this.db, checkNodeName(node));
  }

  async database(): Promise<DatabaseView> {
    const info = (
      await this.db.query<{
        version: string;
        addr: string | null;
        port: number | null;
        in_recovery: boolean;
        read_only: string;
        synchronous_commit: string;
        sync_names: string;
        replay_delay_ms: number | null;
      }>(
        'cluster.database',
        `SELECT current_setting('server_version') AS version, host(inet_server_addr()) AS addr, inet_server_port() AS port,
                pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only,
                current_setting('synchronous_commit') AS synchronous_commit,
                current_setting('synchronous_standby_names') AS sync_names,
                CASE WHEN pg_is_in_recovery() THEN (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint END AS replay_delay_ms`,
      )
    )[0];
    if (!info) throw new StoreError('unavailable', 'cluster: the server did not describe itself');
    // pg_stat_replication shows its lag columns only to superusers and pg_read_all_stats members
    const replicas = await this.db.query<{
      name: string;
      client_addr: string | null;
      state: string | null;
      sync_state: string | null;
      replay_lag_ms: number | null;
      replay_lag_bytes: number | null;
    }>(
      'cluster.replication',
      `SELECT application_name AS name, host(client_addr) AS client_addr, state, sync_state,
              (extract(epoch FROM replay_lag) * 1000)::bigint AS replay_lag_ms,
              CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END AS replay_lag_bytes
         FROM pg_stat_replication ORDER BY application_name, pid`,
    );
    return {
      version: info.version,
      server: info.addr === null ? 'local socket' : `${info.addr.includes(':') ? `[${info.addr}]` : info.addr}:${info.port ?? '?'}`,
      inRecovery: info.in_recovery,
      readOnly: info.read_only === 'on',
      synchronousCommit: info.synchronous_commit,
      synchronousStandbyNames: info.sync_names,
      replicas: replicas.map((r) => ({
        name: r.name,
        clientAddr: r.client_addr,
        state: r.state,
        syncState: r.sync_state,
        replayLagMs: r.replay_lag_ms,
        replayLagBytes: r.replay_lag_bytes,
      })),
      replayDelayMs: info.replay_delay_ms,
    };
  }
}

/** One lock session: a dedicated connection and the jobs whose locks it holds. */
class PgJobLocks implements JobLocks {
  private readonly held = new Set<string>();
  private lostReason: string | null = null;

  private constructor(
    private readonly db: Db,
    private readonly client: pg.Client,
    private readonly node: string,
  ) {}

  static async open(db: Db, node: string): Promise<PgJobLocks> {
    // keepalives so that a holder whose machine vanished is noticed by the server, freeing its locks
    const client = db.newClient('cartero-jobs', { keepAlive: true, keepAliveInitialDelayMillis: 5_000, query_timeout: LOCK_QUERY_TIMEOUT_MS });
    const session = new PgJobLocks(db, client, node);
    client.on('error', (err) => session.lose(err.message));
    client.on('end', () => session.lose('connection closed'));
    try {
      await client.connect();
    } catch (err) {
      db.noteFailure(err);
      await client.end().catch(() => {});
      throw toStoreError(err, 'cluster.openJobLocks');
    }
    return session;
  }

  private lose(reason: string): void {
    if (this.lostReason !== null) return;
    this.lostReason = reason;
    this.held.clear();
    this.client.end().catch(() => {});
  }

  private async run<R extends pg.QueryResultRow>(what: string, text: string, params: unknown[] = []): Promise<R[]> {
    if (this.lostReason !== null) throw new StoreError('unavailable', `cluster: lock session lost (${this.lostReason})`);
    try {
      return (await this.client.query<R>(text, params)).rows;
    } catch (err) {
      if (isConnectionFailure(err)) {
        this.db.noteFailure(err);
        this.lose(err instanceof Error ? err.message : String(err));
      }
      throw toStoreError(err, what);
    }
  }

  async tryAcquire(job: string, now: number): Promise<boolean> {
    checkJobName(job);
    if (this.held.has(job)) {
      await this.check();
      return true;
    }
    const key = jobLockKey(job);
    try {
      await this.run('cluster.job', 'INSERT INTO cluster_jobs (name, lock_key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [job, key]);
    } catch (err) {
      if (isStoreError(err, 'exists')) throw new StoreError('invalid', `cluster: job name ${job} collides with another job's lock key; rename it`, { cause: err });
      throw err;
    }
    const got = (await this.run<{ got: boolean }>('cluster.lock', 'SELECT pg_try_advisory_lock($1, $2) AS got', [JOB_LOCK_NAMESPACE, key]))[0]?.got === true;
    if (!got) return false;
    this.held.add(job);
    try {
      await this.run('cluster.holder', 'UPDATE cluster_jobs SET holder_node = $2, holder_pid = pg_backend_pid(), acquired_at = $3 WHERE name = $1', [job, this.node, now]);
    } catch (err) {
      await this.release(job).catch(() => {});
      throw err;
    }
    return true;
  }

  async release(job: string): Promise<void> {
    if (!this.held.delete(job)) return;
    const key = jobLockKey(job);
    await this.run('cluster.holder', 'UPDATE cluster_jobs SET holder_node = NULL, holder_pid = NULL, acquired_at = NULL WHERE name = $1 AND holder_pid = pg_backend_pid()', [job]);
    await this.run('cluster.unlock', 'SELECT pg_advisory_unlock($1, $2)', [JOB_LOCK_NAMESPACE, key]);
  }

  async check(): Promise<void> {
    await this.run('cluster.check', 'SELECT 1');
  }

  async close(): Promise<void> {
    const wasLost = this.lostReason !== null;
    this.lostReason ??= 'closed';
    this.held.clear();
    if (!wasLost) await this.client.end().catch(() => {});
  }
}
