/*
 * `cartero serve`: runs a node. Loads the configuration, opens the store, makes sure the configured
 * domains exist in the directory, binds every configured listener and waits for signals
 * (SIGTERM/SIGINT: graceful stop, exit 0; SIGHUP: reload the configuration).
 * Startup failures are logged as one line and give exit 1 (a bad config file: exit 2, via main.ts).
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { configuredListeners, type Config } from '../config/schema.js';
import { createLogger, type Logger } from '../log/logger.js';
import { ListenError, startListeners, type Listeners, type ListenerSpec } from '../net/listeners.js';
import { placeholderHandler } from '../net/placeholder.js';
import { isStoreError, openStore, type Store } from '../store/index.js';
import { runCommand, type Command } from './args.js';
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

function listenerSpecs(config: Config, logger: Logger): ListenerSpec[] {
  return configuredListeners(config).map((l) => ({
    proto: l.proto,
    address: l.address,
    port: l.port,
    key: l.key,
    handler: placeholderHandler(l.proto, config.hostname, logger),
    ...(l.maxConnections ? { maxConnections: l.maxConnections } : {}),
    ...(l.maxConnectionsPerClient ? { maxConnectionsPerClient: l.maxConnectionsPerClient } : {}),
  }));
}

async function start(config: Config, logger: Logger): Promise<{ store: Store; listeners: Listeners } | null> {
  let store: Store;
  try {
    store = await openStore(config.store, { migrate: config.store.migrate_on_start });
    await ensureDomains(store, config.domains, logger);
  } catch (err) {
    logger.fatal({ err, backend: config.store.backend }, `cannot open the ${config.store.backend} store`);
    return null;
  }
  try {
    const listeners = await startListeners(listenerSpecs(config, logger), { logger });
    for (const l of listeners.bound) logger.info({ proto: l.proto, address: l.address, port: l.port }, 'listening');
    return { store, listeners };
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    const l = err.listener;
    logger.fatal({ proto: l.proto, address: l.address, port: l.port, key: l.key, code: err.code }, err.message);
    await store.close();
    return null;
  }
}

function reload(file: string, logger: Logger, store: Store): void {
  let next: Config;
  try {
    next = loadConfig(file);
  } catch (err) {
    const lines = err instanceof ConfigError ? err.lines() : [String(err)];
    for (const line of lines) logger.error({ problem: line }, 'configuration problem');
    logger.error({ file }, 'configuration reload failed; keeping the running configuration');
    return;
  }
  // Applied now: log level and directory domains. Listeners and the store need a restart (later issues).
  logger.level = next.log.level;
  ensureDomains(store, next.domains, logger).catch((err: unknown) => logger.error({ err }, 'cannot add configured domains'));
  logger.info({ file }, 'configuration reloaded');
}

export async function serve(file: string): Promise<number> {
  const config = loadConfig(file);
  const logger = createLogger(config.log);
  logger.info({ file, hostname: config.hostname, backend: config.store.backend }, 'starting');
  const running = await start(config, logger);
  if (!running) return 1;
  const { store, listeners } = running;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = (): void => reload(file, logger, store);
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal during shutdown; exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, connections: listeners.connections() }, 'stopping');
      void (async () => {
        await listeners.close(SHUTDOWN_TIMEOUT_MS);
        await store.close().catch((err: unknown) => logger.error({ err }, 'error closing the store'));
        process.off('SIGHUP', onHup);
        logger.info('stopped');
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
