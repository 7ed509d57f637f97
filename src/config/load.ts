/*
 * Loads a node's configuration file: read, parse YAML, validate (validate.ts), then check the files it
 * names (TLS certificates readable, store directory creatable). All problems come back together in one
 * ConfigError so the administrator fixes them in one round; never a stack trace for a config problem.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors.js';
import { describeFound, type ConfigProblem } from './problems.js';
import { PROTOCOLS, type Config } from './schema.js';
import { validateConfig } from './validate.js';

export { ConfigError } from './errors.js';
export { validateConfig } from './validate.js';
export type { Config } from './schema.js';

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      { key: '', found: 'nothing', expected: `a readable configuration file (${errorCode(err)})` },
    ]);
  }
  const raw = parseYaml(text);
  if ('problems' in raw) throw new ConfigError(file, raw.problems);
  const result = validateConfig(raw.value, dirname(resolve(file)));
  if ('problems' in result) throw new ConfigError(file, result.problems);
  const fileProblems = checkFiles(result.config);
  if (fileProblems.length > 0) throw new ConfigError(file, fileProblems);
  return result.config;
}

export function parseYaml(text: string): { value: unknown } | { problems: ConfigProblem[] } {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const lines = text.split(/\r?\n/);
    return {
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const line = pos ? (lines[pos.line - 1] ?? '').trim() : '';
        return {
          key: pos ? `line ${pos.line}, column ${pos.col}` : '',
          found: describeFound(line),
          expected: `valid YAML (${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')})`,
        };
      }),
    };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    return { problems: [{ key: '', found: 'a YAML document', expected: `valid YAML (${String(err)})` }] };
  }
}

/** File-system checks, run only on a config that passed the schema (paths are absolute by then). */
export function checkFiles(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const proto of PROTOCOLS) {
    const tls = config[proto].tls;
    if (!tls) continue;
    for (const which of ['cert', 'key'] as const) {
      const why = unreadableFile(tls[which]);
      if (why) problems.push({ key: `${proto}.tls.${which}`, found: JSON.stringify(tls[which]), expected: `a readable file (${why})` });
    }
  }
  if (config.store.backend === 'embedded') {
    const why = unusableStoreDir(config.store.path);
    if (why) problems.push({ key: 'store.path', found: JSON.stringify(config.store.path), expected: why });
  }
  return problems;
}

function unreadableFile(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return 'it is not a regular file';
    accessSync(path, constants.R_OK);
    return null;
  } catch (err) {
    return errorCode(err);
  }
}

/** The store directory may not exist yet (it is created at open), but its parent must. */
function unusableStoreDir(path: string): string | null {
  try {
    if (!statSync(path).isDirectory()) return 'a directory (it exists but is not one)';
    accessSync(path, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') return `a writable directory (${errorCode(err)})`;
  }
  const parent = dirname(path);
  try {
    if (!statSync(parent).isDirectory()) return `a path whose parent ${parent} is a directory`;
    accessSync(parent, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return `a path whose parent directory ${parent} exists and is writable (${errorCode(err)})`;
  }
}

function errorCode(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}
