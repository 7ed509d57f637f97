/*
 * `cartero lab up|down|status|kill|start|send|fault|pg|dns`: rehearse a mail architecture on one machine. The
 * commands are thin: argument parsing and output here, the work in src/lab/ (runner, sender, DNS).
 * State lives in one directory (--dir, default $CARTERO_LAB_DIR or ./cartero-lab) that `down` removes.
 * LabError becomes a one-line (or few-line) `cartero: …` message and exit 1.
 */
import { resolve } from 'node:path';
import { configuredListeners } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { runLabDns } from '../lab/dns-server.js';
import { LabError, labDown, labKill, labPg, labStart, labStatus, labUp, nodeConfig, resolveTopology, type LabDatabaseStatus, type LabSignal } from '../lab/runner.js';
import { labSmtpTempfail, TEMPFAIL_POINTS } from '../lab/faults.js';
import { createLabSender, type SendOutcome } from '../lab/sender.js';
import { readState } from '../lab/state.js';
import { CliError, runGroup, stringOption, UsageError, type Command, type OptionSpec, type ParsedArgs } from './args.js';
import type { Io } from './context.js';
import { emit, table } from './output.js';

const DIR: OptionSpec = { dir: { type: 'string' } };
const DIR_HELP = '  --dir DIR          lab state directory (default $CARTERO_LAB_DIR or ./cartero-lab)\n';

function stateDir(args: ParsedArgs, io: Io): string {
  return resolve(stringOption(args, 'dir') ?? io.env['CARTERO_LAB_DIR'] ?? 'cartero-lab');
}

/** Runs lab work, turning a LabError into the CLI's operational failure (exit 1). */
async function lab<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof LabError) throw new CliError(err.message, { cause: err });
    throw err;
  }
}

function positiveInt(text: string | undefined, name: string, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`--${name} must be a whole number from 1 to ${max}`, 'lab');
  return Number(text);
}

const SIGNALS: Record<string, LabSignal> = { KILL: 'SIGKILL', TERM: 'SIGTERM', STOP: 'SIGSTOP', CONT: 'SIGCONT' };

// ---- lab databases (cluster-ha: the lab's own PostgreSQL primary and standby)
function labDatabaseText(d: LabDatabaseStatus | null): string {
  if (!d) return '';
  if (d.servers.length === 0) return `database ${d.database} on ${d.server ?? '?'}\n`;
  const rows = d.servers.map((x) => [x.name, x.address, x.pid === null ? '-' : String(x.pid), x.state, x.role ?? '?']);
  return `database ${d.database} on the lab's own PostgreSQL servers:\n${table(['SERVER', 'ADDRESS', 'PID', 'STATE', 'ROLE NOW'], rows)}`;
}

const PG_ACTIONS = ['stop', 'crash', 'start', 'promote'] as const;

const labPgCommand: Command = {
  synopsis: 'pg stop|crash|start|promote primary|standby [--dir DIR]',
  summary: "act on a PostgreSQL server the lab started (cluster-ha): crash = pg_ctl stop -m immediate",
  details: DIR_HELP,
  options: DIR,
  args: { min: 2, max: 2 },
  run: async (args, io) => {
    const [action, name] = args.positionals as [string, string];
    const act = PG_ACTIONS.find((a) => a === action);
    if (!act) throw new UsageError(`the action must be one of ${PG_ACTIONS.join(', ')}`, 'lab pg');
    if (name !== 'primary' && name !== 'standby') throw new UsageError('the server must be primary or standby', 'lab pg');
    await lab(labPg(stateDir(args, io), name, act));
    emit(io, args.json, { server: name, action: act }, () => `postgres ${name}: ${act} done\n`);
    return 0;
  },
};
// ---- end lab databases

const commands: Record<string, Command> = {
  up: {
    synopsis: 'up TOPOLOGY [--dir DIR] [--topologies DIR]',
    summary: 'start the DNS server and every node of a topology (t1, t2-smart-host, or a directory)',
    details: `${DIR_HELP}  --topologies DIR   where topologies live (default examples/topologies)\n`,
    options: { ...DIR, topologies: { type: 'string' } },
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      const dir = stateDir(args, io);
      const topologies = stringOption(args, 'topologies');
      const topologyDir = await lab(Promise.resolve().then(() => resolveTopology(args.positionals[0]!, topologies)));
      const state = await lab(labUp({ topologyDir, stateDir: dir }));
      emit(io, args.json, { dir, topology: state.topology, dns: `${state.dns.address}:${state.dns.port}`, nodes: state.nodes }, () =>
        `lab ${state.topology} is up in ${dir}: DNS ${state.dns.address}:${state.dns.port}, nodes ${Object.keys(state.nodes).join(', ')}\n` +
        `run "cartero lab status${args.values['dir'] ? ` --dir ${dir}` : ''}" to see it, "cartero lab down" to remove it\n`,
      );
      return 0;
    },
  },
  down: {
    synopsis: 'down [--dir DIR]',
    summary: 'stop every process of the lab and remove its state directory',
    details: DIR_HELP,
    options: DIR,
    args: { min: 0, max: 0 },
    run: async (args, io) => {
      const dir = stateDir(args, io);
      const r = await lab(labDown(dir));
      const dropped = r.dropped ? `; dropped database ${r.dropped}` : '';
      emit(io, args.json, { dir, stopped: r.stopped, dropped: r.dropped ?? null }, () => `stopped ${r.stopped.length} process${r.stopped.length === 1 ? '' : 'es'}; removed ${dir}${dropped}\n`);
      return 0;
    },
  },
  status: {
    synopsis: 'status [--dir DIR]',
    summary: 'nodes, addresses, ports, pids, health and queue sizes',
    details: DIR_HELP,
    options: DIR,
    args: { min: 0, max: 0 },
    run: async (args, io) => {
      const s = await lab(labStatus(stateDir(args, io)));
      emit(io, args.json, { topology: s.state.topology, dns: { address: s.state.dns.address, port: s.state.dns.port, pid: s.state.dns.pid, state: s.dns }, nodes: s.nodes, database: s.database }, () => {
        const rows = s.nodes.map((n) => [
          n.node,
          n.role,
          n.address,
          n.ports,
          n.pid === null ? '-' : String(n.pid),
          n.state === 'running' ? 'up' : n.state,
          n.queue ? `${n.queue.active} (${n.queue.leased} leased, ${n.queue.held} held)` : `? ${n.queueError ?? ''}`,
        ]);
        return (
          `lab ${s.state.topology}; DNS ${s.state.dns.address}:${s.state.dns.port} ${s.dns === 'running' ? 'up' : s.dns}\n` +
          table(['NODE', 'ROLE', 'ADDRESS', 'PORTS', 'PID', 'STATE', 'QUEUE'], rows) +
          labDatabaseText(s.database)
        );
      });
      return 0;
    },
  },
  kill: {
    synopsis: 'kill NODE [--signal KILL|TERM|STOP|CONT] [--dir DIR]',
    summary: 'send a node a signal (default SIGKILL: a crash)',
    details: `${DIR_HELP}  --signal SIG       KILL (default), TERM (graceful stop), STOP (freeze), CONT (thaw)\n`,
    options: { ...DIR, signal: { type: 'string' } },
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      const name = (stringOption(args, 'signal') ?? 'KILL').toUpperCase().replace(/^SIG/, '');
      const sig = Object.hasOwn(SIGNALS, name) ? SIGNALS[name] : undefined;
      if (!sig) throw new UsageError('--signal must be KILL, TERM, STOP or CONT', 'lab kill');
      await lab(labKill(stateDir(args, io), args.positionals[0]!, sig));
      emit(io, args.json, { node: args.positionals[0], signal: sig }, () => `${args.positionals[0]}: ${sig} sent\n`);
      return 0;
    },
  },
  start: {
    synopsis: 'start NODE [--dir DIR]',
    summary: 'start a node that was killed, and wait until its listeners answer',
    details: DIR_HELP,
    options: DIR,
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      await lab(labStart(stateDir(args, io), args.positionals[0]!));
      emit(io, args.json, { node: args.positionals[0], started: true }, () => `${args.positionals[0]}: started\n`);
      return 0;
    },
  },
  send: {
    synopsis: 'send FROM TO [--count N] [--via NODE] [--bind ADDRESS] [--port PORT] [--dir DIR]',
    summary: 'inject test mail by SMTP, following the MX records of the lab DNS (or straight to --via NODE)',
    details:
      `${DIR_HELP}  --count N          messages to send (default 1, at most 100000)\n` +
      '  --via NODE         hand every message to this node instead of following MX\n' +
      '  --bind ADDRESS     source address (default 127.0.0.1; pick one outside mynetworks to play the Internet)\n' +
      '  --port PORT        SMTP port of the MX hosts (default 2525)\n' +
      '  --concurrency N    messages in flight at once (default 4)\n',
    options: { ...DIR, count: { type: 'string' }, via: { type: 'string' }, bind: { type: 'string' }, port: { type: 'string' }, concurrency: { type: 'string' } },
    args: { min: 2, max: 2 },
    run: async (args, io) => {
      const dir = stateDir(args, io);
      const [from, to] = args.positionals as [string, string];
      for (const a of [from, to]) if (!/^[^\s@<>]+@[^\s@<>]+$/.test(a)) throw new UsageError(`"${a.slice(0, 80)}" is not a mail address`, 'lab send');
      const count = positiveInt(stringOption(args, 'count'), 'count', 1, 100_000);
      const port = positiveInt(stringOption(args, 'port'), 'port', 2525, 65535);
      const concurrency = positiveInt(stringOption(args, 'concurrency'), 'concurrency', 4, 64);
      const state = await lab(Promise.resolve().then(() => readState(dir)));
      let destination: string | undefined;
      const via = stringOption(args, 'via');
      if (via !== undefined) {
        const config = await lab(Promise.resolve().then(() => nodeConfig(dir, via)));
        const l = configuredListeners(config).find((x) => x.proto === 'smtp' && !x.submission && x.tls === undefined);
        if (!l) throw new CliError(`node ${via} has no plain SMTP listener`);
        destination = `smtp:[${l.address}]:${l.port}`;
      }
      const bind = stringOption(args, 'bind');
      const sender = createLabSender({ dnsServer: `${state.dns.address}:${state.dns.port}`, smtpPort: port, ...(bind ? { bindAddress: bind } : {}) });
      const tally: Record<SendOutcome, number> = { accepted: 0, deferred: 0, failed: 0 };
      const reasons = new Map<string, number>();
      let next = 0;
      try {
        await Promise.all(
          Array.from({ length: Math.min(concurrency, count) }, async () => {
            while (next < count) {
              const i = ++next;
              const r = await sender.send({ from, to: [to], subject: `cartero lab ${i}/${count}`, headers: [`X-Lab-Seq: ${i}`], ...(destination ? { destination } : {}) });
              for (const o of r.outcomes.values()) {
                tally[o.outcome]++;
                if (o.outcome !== 'accepted') reasons.set(o.reason, (reasons.get(o.reason) ?? 0) + 1);
              }
            }
          }),
        );
      } finally {
        await sender.close();
      }
      emit(io, args.json, { sent: count, ...tally, reasons: Object.fromEntries(reasons) }, () =>
        `sent ${count}: ${tally.accepted} accepted (250), ${tally.deferred} deferred (4xx or no answer), ${tally.failed} refused (5xx)\n` +
        [...reasons].slice(0, 5).map(([r, n]) => `  ${n} × ${r}\n`).join(''),
      );
      return tally.accepted === count ? 0 : 1;
    },
  },
  dns: {
    synopsis: 'dns --zone FILE --faults FILE --ready FILE [--address 127.0.0.1] [--port N]',
    summary: 'run the lab DNS server (started by "lab up"; SIGHUP re-reads the zone and fault files)',
    details: '  --port N           0 or absent: a free port, written to the ready file\n',
    options: { zone: { type: 'string' }, faults: { type: 'string' }, ready: { type: 'string' }, address: { type: 'string' }, port: { type: 'string' } },
    args: { min: 0, max: 0 },
    run: async (args) => {
      const zoneFile = stringOption(args, 'zone');
      const faultsFile = stringOption(args, 'faults');
      const readyFile = stringOption(args, 'ready');
      if (!zoneFile || !faultsFile || !readyFile) throw new UsageError('--zone, --faults and --ready are required', 'lab dns');
      const address = stringOption(args, 'address') ?? '127.0.0.1';
      if (!address.startsWith('127.') && address !== '::1') throw new UsageError('the lab DNS server binds loopback only', 'lab dns');
      const portText = stringOption(args, 'port');
      const port = portText === undefined || portText === '0' ? 0 : positiveInt(portText, 'port', 0, 65535);
      const logger = createLogger({ level: 'info', format: 'text' });
      return runLabDns({ zoneFile, faultsFile, readyFile, address, port, logger });
    },
  },
};

// after the other commands in `cartero lab help`
commands['pg'] = labPgCommand;

// ---- lab faults in a node's configuration (src/lab/faults.ts)
const FAULT_KINDS = ['smtp-tempfail', 'smtp-ok'] as const;

commands['fault'] = {
  synopsis: `fault NODE smtp-tempfail [${TEMPFAIL_POINTS.join('|')}] | fault NODE smtp-ok [--dir DIR]`,
  summary: "put a node's SMTP listeners in maintenance (every transaction answered 451 at AT, default mail) or back",
  details: `${DIR_HELP}  the node reloads its configuration (SIGHUP): open sessions stay, and answer 4xx from their next transaction
`,
  options: DIR,
  args: { min: 2, max: 3 },
  run: async (args, io) => {
    const [node, kind, point] = args.positionals as [string, string, string | undefined];
    if (!FAULT_KINDS.some((k) => k === kind)) throw new UsageError(`the fault must be one of ${FAULT_KINDS.join(', ')}`, 'lab fault');
    if (kind === 'smtp-ok' && point !== undefined) throw new UsageError('smtp-ok takes no AT', 'lab fault');
    const at = kind === 'smtp-ok' ? null : TEMPFAIL_POINTS.find((x) => x === (point ?? 'mail'));
    if (at === undefined) throw new UsageError(`AT must be one of ${TEMPFAIL_POINTS.join(', ')}`, 'lab fault');
    const r = await lab(labSmtpTempfail(stateDir(args, io), node, at));
    const what = at === null ? 'SMTP answers normally' : `SMTP answers 451 at ${at}`;
    emit(io, args.json, { node, fault: kind, at, running: r.running }, () => `${node}: ${what}${r.running ? '' : ' (from its next start: it is not running)'}\n`);
    return 0;
  },
};
// ---- end lab faults

export function runLab(argv: string[], io: Io): Promise<number> {
  return runGroup('lab', 'rehearse a mail architecture on one machine: a topology of cartero nodes on 127.0.0.x with a lab DNS', commands, argv, io);
}
