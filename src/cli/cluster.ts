/*
 * `cartero cluster status [--json] [--missed N]`: the nodes of the cluster (alive or dead, last heartbeat,
 * leases held, roles), queue depth, the holder of each singleton job and PostgreSQL's own view
 * (primary or standby, replication), read from the shared store by any node or admin host.
 * Exit 0 when the status could be read, whatever it shows (monitoring reads --json); a store that
 * cannot be reached is an operational failure (exit 1) through main.ts.
 */
import { clusterStatus, formatAge, type ClusterStatus } from '../cluster/status.js';
import { DEFAULT_MISSED_HEARTBEATS } from '../cluster/node.js';
import { runGroup, stringOption, UsageError, type Command } from './args.js';
import { withStore, type Io } from './context.js';
import { emit, formatTime, table } from './output.js';

/** Control characters from the database never reach the terminal. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

function formatDatabase(db: ClusterStatus['database']): string {
  if (db === null) return 'database: embedded store (one node, no replication)\n';
  if ('error' in db) return `database: cannot describe itself: ${printable(db.error)}\n`;
  let out =
    `database: PostgreSQL ${printable(db.version)} at ${printable(db.server)}, ${db.inRecovery ? 'standby (in recovery)' : 'primary'}` +
    `${db.readOnly ? ', read-only' : ''}\n` +
    `  synchronous_commit=${printable(db.synchronousCommit)} synchronous_standby_names=${db.synchronousStandbyNames === '' ? "''" : printable(db.synchronousStandbyNames)}\n`;
  if (db.replayDelayMs !== null) out += `  last replayed transaction: ${formatAge(db.replayDelayMs)} ago\n`;
  if (db.replicas.length === 0) {
    if (!db.inRecovery) out += '  replication: no standby visible in pg_stat_replication\n';
    return out;
  }
  return (
    out +
    table(
      ['  STANDBY', 'ADDRESS', 'STATE', 'SYNC', 'REPLAY LAG'],
      db.replicas.map((r) => [
        `  ${printable(r.name || '-')}`,
        printable(r.clientAddr ?? '-'),
        printable(r.state ?? '?'),
        printable(r.syncState ?? '?'),
        `${r.replayLagMs === null ? '-' : formatAge(r.replayLagMs)}${r.replayLagBytes === null ? '' : ` (${r.replayLagBytes} bytes)`}`,
      ]),
    )
  );
}

export function formatClusterStatus(s: ClusterStatus): string {
  const alive = s.nodes.filter((n) => n.alive).length;
  let out = `cluster: ${s.nodes.length} node${s.nodes.length === 1 ? '' : 's'} registered, ${alive} alive (store: ${s.backend})\n\n`;
  out +=
    s.nodes.length === 0
      ? 'no node has registered yet\n'
      : table(
          ['NODE', 'STATE', 'LAST HEARTBEAT', 'LEASES', 'ROLES', 'HOST/PID', 'VERSION'],
          s.nodes.map((n) => [
            printable(n.name),
            n.alive ? 'alive' : 'DEAD',
            `${formatAge(n.heartbeatAgeMs)} ago`,
            String(n.leases),
            n.roles.join(',') || '-',
            `${printable(n.hostname)}/${n.pid}`,
            printable(n.version),
          ]),
        );
  for (const l of s.otherLeases) out += `leases held by ${printable(l.owner)} (no registered node): ${l.count}\n`;
  const q = s.queue;
  out += `\nqueue: ${q.active} active (${q.due} due now, ${q.leased} being delivered), ${q.held} held\n\n`;
  out +=
    s.jobs.length === 0
      ? 'singleton jobs: none has run yet\n'
      : table(
          ['JOB', 'HELD BY', 'SINCE'],
          s.jobs.map((j) => [printable(j.job), j.node === null ? '(nobody)' : printable(j.node), j.since === null ? '-' : `${formatAge(Math.max(0, s.now - j.since))} ago`]),
        );
  return `${out}\n${formatDatabase(s.database)}`;
}

/** The --json form: ISO times beside the raw numbers, stable keys. */
export function statusJson(s: ClusterStatus): unknown {
  return {
    time: formatTime(s.now),
    backend: s.backend,
    nodes: s.nodes.map((n) => ({ ...n, startedAt: formatTime(n.startedAt), lastHeartbeat: formatTime(n.lastHeartbeat) })),
    otherLeases: s.otherLeases,
    queue: s.queue,
    jobs: s.jobs.map((j) => ({ job: j.job, node: j.node, since: j.since === null ? null : formatTime(j.since) })),
    database: s.database,
  };
}

function missedOption(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MISSED_HEARTBEATS;
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1) throw new UsageError(`--missed: expected a whole number of heartbeats from 1 to 999, got "${text}"`, 'cluster status');
  return Number(text);
}

const commands: Record<string, Command> = {
  status: {
    synopsis: 'status [--missed N]',
    summary: 'nodes (alive/dead, heartbeat, leases, roles), queue depth, singleton job holders, PostgreSQL role and replication',
    details: `  --missed N          a node is dead after N missed heartbeats (default ${DEFAULT_MISSED_HEARTBEATS})\n`,
    options: { missed: { type: 'string' } },
    args: { min: 0, max: 0 },
    run: async (args, io) => {
      const missed = missedOption(stringOption(args, 'missed'));
      const status = await withStore(args.config, (store) => clusterStatus(store, Date.now(), { missedHeartbeats: missed }));
      emit(io, args.json, statusJson(status), () => formatClusterStatus(status));
      return 0;
    },
  },
};

export function runCluster(argv: string[], io: Io): Promise<number> {
  return runGroup('cluster', 'Inspect the cluster: nodes, singleton jobs and the database.', commands, argv, io);
}
