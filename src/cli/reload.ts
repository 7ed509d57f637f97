/*
 * `cartero reload`: asks the running node to re-read its configuration and lookup tables, like
 * `postfix reload`. It sends SIGHUP to the pid in pid_file; sessions stay up and the node logs what it
 * applied (or why it kept the old configuration). Exit 1 when no node is running for this configuration.
 */
import { loadConfig } from '../config/load.js';
import { CliError, runCommand, type Command } from './args.js';
import type { Io } from './context.js';
import { emit } from './output.js';
import { isRunning, readPidFile } from './pidfile.js';

const reloadCommand: Command = {
  synopsis: '[-c FILE]',
  summary: 'make the running node re-read its configuration and maps (SIGHUP)',
  details: 'Finds the node through pid_file of the configuration (default: cartero.pid beside the file).\n',
  args: { min: 0, max: 0 },
  run: async (args, io) => {
    const config = loadConfig(args.config);
    const pid = readPidFile(config.pid_file);
    if (pid === null || !isRunning(pid)) throw new CliError(`no running node found (pid_file ${config.pid_file})`);
    process.kill(pid, 'SIGHUP');
    emit(io, args.json, { reloaded: pid }, () => `reload signal sent to process ${pid}\n`);
    return 0;
  },
};

export function runReload(argv: string[], io: Io): Promise<number> {
  return runCommand('reload', reloadCommand, argv, io);
}
