/*
 * `cartero check-config`: validates the configuration file (schema, cross-key rules, referenced files)
 * without opening the store or binding ports. Problems are thrown as ConfigError; main.ts prints them
 * one per line on stderr and exits 2.
 */
import { loadConfig } from '../config/load.js';
import { runCommand, type Command } from './args.js';
import type { Io } from './context.js';
import { emit } from './output.js';

const checkConfig: Command = {
  synopsis: '[-c FILE]',
  summary: 'check the configuration file and exit 0 when it is valid, 2 when it is not',
  details: 'With --json, prints the effective configuration (defaults applied, paths resolved).\n',
  args: { min: 0, max: 0 },
  run: async (args, io) => {
    const config = loadConfig(args.config);
    emit(io, args.json, { ok: true, file: args.config, config }, () => `config OK: ${args.config}\n`);
    return 0;
  },
};

export function runCheckConfig(argv: string[], io: Io): Promise<number> {
  return runCommand('check-config', checkConfig, argv, io);
}
