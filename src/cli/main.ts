/*
 * The `cartero` command: dispatches to one module per command group and maps failures to exit codes:
 * 0 ok; 1 operational failure (one line `cartero: …` on stderr); 2 usage or configuration error.
 * Never prints a stack trace for an expected failure (set CARTERO_DEBUG=1 to see unexpected ones).
 */
import '../threadpool.js';
import '../heap-tuning.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import { isStoreError } from '../store/index.js';
import { CliError, UsageError } from './args.js';
import { processIo, type Io } from './context.js';

type Run = (argv: string[], io: Io) => Promise<number>;

// Command modules load on demand: `cartero --help` should not pay for every dependency.
const COMMANDS: Record<string, { summary: string; load(): Promise<Run> }> = {
  serve: { summary: 'run this node (listeners for every configured protocol)', load: async () => (await import('./serve.js')).runServe },
  'check-config': { summary: 'validate the configuration file', load: async () => (await import('./check-config.js')).runCheckConfig },
  db: { summary: 'store schema: migrate', load: async () => (await import('./db.js')).runDb },
  domain: { summary: 'local mailbox domains: add, list, remove', load: async () => (await import('./domain.js')).runDomain },
  user: { summary: 'accounts: add, list, passwd, remove, quota', load: async () => (await import('./user.js')).runUser },
  alias: { summary: 'aliases and catch-alls: add, list, remove', load: async () => (await import('./alias.js')).runAlias },
  map: { summary: 'lookup tables: test a key; set, delete, list, import store tables', load: async () => (await import('./map.js')).runMap },
  queue: { summary: 'mail queue: list, show, flush, requeue, hold, release, delete', load: async () => (await import('./queue.js')).runQueue },
  sendmail: { summary: 'Sendmail-compatible submission (reads the message from stdin)', load: async () => (await import('./sendmail.js')).runSendmail },
  cluster: { summary: 'cluster status: nodes, singleton jobs, queue, database', load: async () => (await import('./cluster.js')).runCluster },
  lab: { summary: 'rehearse a topology on one machine: up, down, status, kill, start, send', load: async () => (await import('./lab.js')).runLab },
  store: { summary: 'move the store to another backend: migrate --from OLD.yaml --to NEW.yaml', load: async () => (await import('./store.js')).runStore },
  reload: { summary: 'make the running node re-read its configuration and maps (SIGHUP)', load: async () => (await import('./reload.js')).runReload },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return (
    'usage: cartero COMMAND [options]\n\ncommands:\n' +
    `${lines.join('\n')}\n\n` +
    'Every command accepts --help, --json and -c/--config FILE (default $CARTERO_CONFIG or ./cartero.yaml).\n'
  );
}

export function reportError(err: unknown, io: Io): number {
  if (err instanceof ConfigError) {
    for (const line of err.lines()) io.err(`${line}\n`);
    return 2;
  }
  if (err instanceof UsageError) {
    io.err(`cartero: ${err.message}\n`);
    io.err(`run "cartero ${err.command ?? ''}${err.command ? ' ' : ''}--help" for usage\n`);
    return 2;
  }
  // A StoreError `invalid` is a bad argument (malformed address or domain): a usage error.
  if (isStoreError(err, 'invalid')) {
    io.err(`cartero: ${err.message}\n`);
    return 2;
  }
  if (err instanceof CliError || isStoreError(err)) {
    io.err(`cartero: ${err.message}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.err(`cartero: unexpected error: ${message}\n`);
  if (io.env['CARTERO_DEBUG'] && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
  return 1;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return 0;
  }
  const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.err(name === undefined ? usage() : `cartero: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load())(rest, io);
  } catch (err) {
    return reportError(err, io);
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main(process.argv.slice(2));
  // Exit explicitly so a lingering handle (a driver's idle timer) cannot keep a finished command alive.
  process.stdout.write('', () => process.exit(code));
}
