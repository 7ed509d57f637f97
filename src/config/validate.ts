/*
 * Pure validation of an already parsed configuration value: schema, cross-key rules, and resolution of
 * relative paths against the configuration file's directory. No I/O (file checks live in load.ts).
 * Returns problems as data; never throws for bad input.
 */
import { resolve } from 'node:path';
import { MAP_NAMES } from '../routing/settings.js';
import { expectedText, issuesToProblems, type ConfigProblem } from './problems.js';
import { configSchema, configuredListeners, PROTOCOLS, type Config } from './schema.js';

export type ValidationResult = { config: Config } | { problems: ConfigProblem[] };

export function validateConfig(raw: unknown, baseDir: string): ValidationResult {
  // An empty YAML document is null: it means "all defaults".
  const input = raw === null || raw === undefined ? {} : raw;
  const parsed = configSchema.safeParse(input, { error: (issue) => expectedText(issue) });
  if (!parsed.success) return { problems: issuesToProblems(parsed.error.issues, input, configSchema) };
  const problems = crossKeyProblems(parsed.data);
  if (problems.length > 0) return { problems };
  return { config: resolvePaths(parsed.data, baseDir) };
}

/** Rules that involve more than one key, which the schema cannot express locally. */
function crossKeyProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, string>();
  for (const l of configuredListeners(config)) {
    if (l.tls === 'implicit' && !config[l.proto].tls) {
      problems.push({
        key: `${l.key}.tls`,
        found: '"implicit"',
        expected: `a certificate in ${l.proto}.tls (cert and key) for implicit TLS`,
      });
    }
    const where = `${l.address}:${l.port}`;
    const first = seen.get(where);
    if (first) {
      problems.push({ key: l.key, found: JSON.stringify(where), expected: `an address and port not already used by ${first}` });
    } else {
      seen.set(where, l.key);
    }
  }
  const local = new Set(config.domains);
  config.relay_domains.forEach((d, i) => {
    if (local.has(d)) {
      problems.push({ key: `relay_domains[${i}]`, found: JSON.stringify(d), expected: 'a domain not also listed in domains' });
    }
  });
  return problems;
}

function resolvePaths(config: Config, baseDir: string): Config {
  const out: Config = structuredClone(config);
  if (out.store.backend === 'embedded') out.store.path = resolve(baseDir, out.store.path);
  out.pid_file = resolve(baseDir, out.pid_file);
  for (const name of MAP_NAMES) {
    const setting = out[name];
    if (setting === undefined) continue;
    const list = Array.isArray(setting) ? setting : [setting];
    for (const source of list) if ('file' in source && typeof source.file === 'string') source.file = resolve(baseDir, source.file);
  }
  const auth = out.relayhost?.auth;
  if (auth?.password_file !== undefined) auth.password_file = resolve(baseDir, auth.password_file);
  for (const proto of PROTOCOLS) {
    const tls = out[proto].tls;
    if (tls) out[proto].tls = { cert: resolve(baseDir, tls.cert), key: resolve(baseDir, tls.key) };
  }
  return out;
}
