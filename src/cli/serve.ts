/*
 * `cartero serve`: runs a node. Loads the configuration, opens the store, makes sure the configured
 * domains exist in the directory, wires the receiving path (SMTP server -> policy -> queue commit ->
 * scheduler -> local delivery), binds every configured listener and waits for signals
 * (SIGTERM/SIGINT: graceful stop, exit 0; SIGHUP: reload the configuration).
 * Startup failures are logged as one line and give exit 1 (a bad config file: exit 2, via main.ts).
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { configuredListeners, type Config, type ListenerSettings, type Protocol } from '../config/schema.js';
import { createLogger, type Logger } from '../log/logger.js';
import { ListenError, specFor, startListeners, type ConnectionHandler, type Listeners, type ListenerSpec } from '../net/listeners.js';
import { startStats } from '../log/stats.js';
import { createSmtpServer, SmtpSetupError } from '../smtp/server.js';
import { createImapServer, ImapSetupError } from '../imap/server.js';
import { createPop3Server, Pop3SetupError } from '../pop3/server.js';
import { isMapError } from '../routing/maps.js';
import { isStoreError, openStore, type Store } from '../store/index.js';
import { Membership } from '../cluster/membership.js';
import { nodeIdentity } from '../cluster/node.js';
import { SingletonRunner } from '../cluster/singleton.js';
import { defaultSingletonJobs } from '../cluster/jobs.js';
import { startMailServices, type MailServices } from './serve-mail.js';
import { runCommand, type Command } from './args.js';
import { removePidFile, writePidFile } from './pidfile.js';
import type { Io } from './context.js';

/** how long open sessions get to finish at shutdown before they are cut */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Adds the domains named in the configuration that the directory lacks (other nodes may race us). */
export async function ensureDomains(store: Store, domains: readonly string[], logger: Logger): Promise<void> {
  for (const name of domains) {
    if (await store.directory.getDomain(name)) continue;
    try {
      await store.directory.addDomain(name);
      logger.info({ domain: name }, 'domain added from configuration');
    } catch (err) {
      if (!isStoreError(err, 'exists')) throw err;
    }
  }
}

/** What serve needs of each protocol server (SmtpServer has this shape; IMAP and POP3 will too). */
interface ProtocolServer {
  handler(listener: ListenerSettings): ConnectionHandler;
  drain(timeoutMs?: number): Promise<void>;
  reload(config: Config): void;
}

type Servers = Record<Protocol, ProtocolServer>;

function listenerSpecs(config: Config, servers: Servers): ListenerSpec[] {
  return configuredListeners(config).map((l) => specFor(l, servers[l.proto].handler(l)));
}

interface Running {
  store: Store;
  listeners: Listeners;
  servers: Servers;
  mail: MailServices;
}

async function start(config: Config, logger: Logger): Promise<Running | null> {
  let store: Store;
  try {
    store = await openStore(config.store, { migrate: config.store.migrate_on_start });
    await ensureDomains(store, config.domains, logger);
  } catch (err) {
    logger.fatal({ err, backend: config.store.backend }, `cannot open the ${config.store.backend} store`);
    return null;
  }
  try {
    const mail = await startMailServices({ config, store, logger });
    // the server builds its mynetworks matcher from the config, so SIGHUP applies a new mynetworks
    const servers: Servers = {
      smtp: createSmtpServer({ config, services: mail.services, logger }),
      lmtp: createSmtpServer({ config, services: mail.lmtpServices, logger, protocol: 'lmtp' }),
      imap: createImapServer({ config, store, logger }),
      pop3: createPop3Server({ config, store, logger }),
    };
    const listeners = await startListeners(listenerSpecs(config, servers), { logger });
    for (const l of listeners.bound) logger.info({ proto: l.proto, address: l.address, port: l.port }, 'listening');
    mail.scheduler.start();
    return { store, listeners, servers, mail };
  } catch (err) {
    const setup = err instanceof SmtpSetupError || err instanceof ImapSetupError || err instanceof Pop3SetupError || isMapError(err);
    if (setup) logger.fatal({ err: err.message }, err.message);
    else if (err instanceof ListenError) {
      const l = err.listener;
      logger.fatal({ proto: l.proto, address: l.address, port: l.port, key: l.key, code: err.code }, err.message);
    } else throw err;
    await store.close();
    return null;
  }
}

function reload(file: string, logger: Logger, running: Running): void {
  let next: Config;
  try {
    next = loadConfig(file);
  } catch (err) {
    const lines = err instanceof ConfigError ? err.lines() : [String(err)];
    for (const line of lines) logger.error({ problem: line }, 'configuration problem');
    logger.error({ file }, 'configuration reload failed; keeping the running configuration');
    return;
  }
  // Applied now: log level, directory domains, protocol settings and TLS files for new sessions.
  // Lookup table files are re-read. Listeners, the store, delivery settings and inline maps need a restart.
  logger.level = next.log.level;
  for (const server of Object.values(running.servers)) server.reload(next);
  ensureDomains(running.store, next.domains, logger).catch((err: unknown) => logger.error({ err }, 'cannot add configured domains'));
  running.mail.reloadMaps().then(
    () => logger.info('lookup tables reloaded'),
    (err: unknown) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'lookup table reload failed; keeping the old tables'),
  );
  logger.info({ file }, 'configuration reloaded');
}

export async function serve(file: string): Promise<number> {
  const config = loadConfig(file);
  const logger = createLogger(config.log);
  logger.info({ file, hostname: config.hostname, backend: config.store.backend }, 'starting');
  const running = await start(config, logger);
  if (!running) {
    await new Promise<void>((done) => logger.flush(() => done()));
    return 1;
  }
  const { store, listeners, servers, mail } = running;
  try {
    writePidFile(config.pid_file);
  } catch (err) {
    logger.warn({ err, pid_file: config.pid_file }, 'cannot write the pid file; `cartero reload` will not find this node');
  }
  const stopStats = startStats(logger, config.log.stats_interval);
  // Cluster membership and the singleton jobs (blob collection, registry pruning): on PostgreSQL one
  // node at a time runs each job and another takes over when it dies; on the embedded store, this node.
  const node = nodeIdentity(config, { ...(config.cluster.node_name ? { name: config.cluster.node_name } : {}), heartbeatMs: config.cluster.heartbeat_seconds * 1000, delivery: true, jobs: true });
  const membership = new Membership({ store, logger, node });
  await membership.start();
  // queue receipts (XQUEUEID, docs/xqueueid.md) outlive every retry a sender like us would make, plus a day
  const receiptRetentionMs = (Math.max(config.delivery.maximal_queue_lifetime, config.delivery.bounce_queue_lifetime) + 86_400) * 1000;
  const jobs = new SingletonRunner({
    store,
    logger,
    node: node.name,
    jobs: defaultSingletonJobs(store, {
      receipts: { retentionMs: receiptRetentionMs },
      digests: { windowMs: config.delivery.duplicate_suppression_window * 1000 },
    }),
  });
  jobs.start();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = (): void => reload(file, logger, running);
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal during shutdown; exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, connections: listeners.connections() }, 'stopping');
      void (async () => {
        // new commands get 421 while messages in transfer are committed; then deliveries in flight finish
        const drains = Object.values(servers).map((s) => s.drain(SHUTDOWN_TIMEOUT_MS));
        await Promise.all([...drains, listeners.close(SHUTDOWN_TIMEOUT_MS)]);
        await mail.scheduler.stop();
        await mail.close();
        await jobs.stop();
        await membership.stop();
        stopStats();
        await store.close().catch((err: unknown) => logger.error({ err }, 'error closing the store'));
        process.off('SIGHUP', onHup);
        removePidFile(config.pid_file);
        logger.info('stopped');
        await new Promise<void>((done) => logger.flush(() => done()));
        resolve(0);
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', onHup);
  });
}

const serveCommand: Command = {
  synopsis: '[-c FILE]',
  summary: 'run this node: listeners for SMTP, submission, LMTP, IMAP and POP3 as configured',
  details: 'Signals: SIGTERM/SIGINT stop gracefully (exit 0); SIGHUP reloads the configuration.\n',
  args: { min: 0, max: 0 },
  run: (args) => serve(args.config),
};

export function runServe(argv: string[], io: Io): Promise<number> {
  return runCommand('serve', serveCommand, argv, io);
}
