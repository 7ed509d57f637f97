/*
 * Argument parsing and command dispatch for `cartero`: every command accepts --help, --json and
 * -c/--config; a command group dispatches to its subcommands and prints usage on --help.
 * Owns the CLI error types: UsageError (exit 2) and CliError (operational failure, exit 1).
 * Built on node:util parseArgs in strict mode, so an unknown option is a usage error, never ignored.
 */
import { parseArgs } from 'node:util';
import type { Io } from './context.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** the command to suggest `--help` for, e.g. "user add" */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** An operational failure with a message for the administrator (exit 1). */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
  json: boolean;
  help: boolean;
  /** the configuration file, after the -c / $CARTERO_CONFIG / ./cartero.yaml rule */
  config: string;
}

/** -c, then $CARTERO_CONFIG, then ./cartero.yaml */
export function configPath(option: string | undefined, env: NodeJS.ProcessEnv): string {
  return option ?? env['CARTERO_CONFIG'] ?? './cartero.yaml';
}

const COMMON: OptionSpec = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  config: { type: 'string', short: 'c' },
};

export function parseCommandLine(argv: string[], options: OptionSpec, env: NodeJS.ProcessEnv, command?: string): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs messages are good but mention "parseArgs"-isms like "To specify a positional argument…".
    throw new UsageError(err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err), command);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  return {
    positionals: parsed.positionals,
    values,
    json: values['json'] === true,
    help: values['help'] === true,
    config: configPath(typeof values['config'] === 'string' ? values['config'] : undefined, env),
  };
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

export interface Command {
  /** e.g. "add ADDRESS [--quota BYTES]" (without the group name) */
  synopsis: string;
  summary: string;
  /** extra lines for --help: options and examples */
  details?: string;
  options?: OptionSpec;
  args: { min: number; max: number };
  run(args: ParsedArgs, io: Io): Promise<number>;
}

const COMMON_HELP = '  -c, --config FILE  configuration file (default $CARTERO_CONFIG or ./cartero.yaml)\n  --json             print JSON instead of a table\n  -h, --help         show this help\n';

export function commandHelp(prefix: string, cmd: Command): string {
  return `usage: cartero ${prefix}${cmd.synopsis ? ` ${cmd.synopsis}` : ''}\n\n${cmd.summary}\n\n${cmd.details ? `${cmd.details}\n` : ''}options:\n${COMMON_HELP}`;
}

export function groupHelp(group: string, summary: string, commands: Record<string, Command>): string {
  const lines = Object.values(commands).map((c) => `  cartero ${group} ${c.synopsis.padEnd(48)} ${c.summary}`);
  return `usage: cartero ${group} COMMAND [options]\n\n${summary}\n\ncommands:\n${lines.join('\n')}\n\noptions:\n${COMMON_HELP}`;
}

/** Parses and runs one command (a single command such as `serve`, or a group's subcommand). */
export async function runCommand(prefix: string, cmd: Command, argv: string[], io: Io): Promise<number> {
  const args = parseCommandLine(argv, cmd.options ?? {}, io.env, prefix);
  if (args.help) {
    io.out(commandHelp(prefix, cmd));
    return 0;
  }
  const n = args.positionals.length;
  if (n < cmd.args.min) throw new UsageError(`${prefix}: missing argument (usage: cartero ${prefix} ${cmd.synopsis})`, prefix);
  if (n > cmd.args.max) throw new UsageError(`${prefix}: unexpected argument "${args.positionals[cmd.args.max] ?? ''}"`, prefix);
  return cmd.run(args, io);
}

export async function runGroup(group: string, summary: string, commands: Record<string, Command>, argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    // Without a command the help is an answer to a mistake: stderr and exit 2.
    (name === undefined ? io.err : io.out)(groupHelp(group, summary, commands));
    return name === undefined ? 2 : 0;
  }
  const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!cmd) throw new UsageError(`${group}: unknown command "${name}"`, group);
  return runCommand(`${group} ${name}`, cmd, rest, io);
}

/** Byte counts as typed by administrators: 1048576, 500K, 10M, 2G (powers of 1024), or "none". */
export function parseBytes(text: string): number | null {
  if (text.toLowerCase() === 'none') return null;
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid size "${text}": expected a number of bytes (e.g. 1048576, 500K, 10M, 2G) or "none"`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  const value = Number(m[1]) * 1024 ** power;
  if (!Number.isSafeInteger(value)) throw new UsageError(`invalid size "${text}": too large`);
  return value;
}
