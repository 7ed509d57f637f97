/*
 * `cartero map test NAME KEY`: what KEY resolves to in one routing table (canonical, virtual alias or
 * transport maps), searched the way commit and the router search it — Postfix's address order, or
 * transport(5)'s address/domain/parent-domain order — like `postmap -q` with the routing rules on top.
 * Reads only the routing keys of the configuration file and the tables they name; no store access.
 * A key with no entry prints "not found" and exits 1 (as postmap -q does).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { parseYaml } from '../config/load.js';
import { expectedText, issuesToProblems } from '../config/problems.js';
import { isMapError, lookupAddress, MapChain, type LookupMap } from '../routing/maps.js';
import { openRoutingMaps } from '../routing/open.js';
import { MAP_NAMES, routingSettingsSchema, type MapName, type RoutingSettings } from '../routing/settings.js';
import { describeTransport, parseTransport, resolveSpec, transportKeys } from '../routing/transport.js';
import { virtualStep } from '../routing/virtual.js';
import { CliError, runGroup, UsageError, type Command } from './args.js';
import type { Io } from './context.js';
import { emit } from './output.js';

export interface LoadedRouting {
  settings: RoutingSettings;
  baseDir: string;
  /** local domains of the config (the bare `user` key form applies to them) */
  domains: string[];
  hostname: string;
  delimiters: string;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * The routing keys of a configuration file, validated with routingSettingsSchema (other keys are the
 * business of the main schema). Throws ConfigError naming the key, like check-config does.
 */
export async function loadRoutingSettings(file: string): Promise<LoadedRouting> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : String(err);
    throw new ConfigError(file, [{ key: '', found: 'nothing', expected: `a readable configuration file (${code})` }]);
  }
  const raw = parseYaml(text);
  if ('problems' in raw) throw new ConfigError(file, raw.problems);
  const all = record(raw.value);
  const known = new Set(Object.keys(routingSettingsSchema.shape));
  const picked = Object.fromEntries(Object.entries(all).filter(([k]) => known.has(k)));
  const parsed = routingSettingsSchema.safeParse(picked, { error: (issue) => expectedText(issue) });
  if (!parsed.success) throw new ConfigError(file, issuesToProblems(parsed.error.issues, picked, routingSettingsSchema));
  const domains = Array.isArray(all.domains) ? all.domains.filter((d): d is string => typeof d === 'string').map((d) => d.toLowerCase()) : [];
  const delivery = record(all.delivery);
  return {
    settings: parsed.data,
    baseDir: dirname(resolve(file)),
    domains,
    hostname: typeof all.hostname === 'string' ? all.hostname : 'localhost',
    delimiters: typeof delivery.recipient_delimiter === 'string' ? delivery.recipient_delimiter : '+',
  };
}

export interface MapAnswer {
  map: MapName;
  key: string;
  found: boolean;
  /** the table key that matched (lowercased) */
  matched_key?: string;
  /** which table of the list held it, e.g. "file:/etc/cartero/virtual" */
  source?: string;
  value?: string;
  /** transport_maps: the transport this recipient gets from the entry */
  transport?: string;
  /** virtual_alias_maps: the targets after templates, or the error */
  targets?: string[];
  error?: string;
}

async function sourceOf(chain: MapChain, key: string): Promise<string | undefined> {
  for (const m of chain.maps) if ((await m.get(key)) !== null) return m.name;
  return undefined;
}

/** Resolves KEY in one table as commit or the router would. */
export async function resolveKey(name: MapName, chain: MapChain, key: string, r: LoadedRouting): Promise<MapAnswer> {
  const isLocal = (d: string) => r.domains.includes(d.toLowerCase());
  let matched: string | null = null;
  let value: string | null = null;
  if (name === 'transport_maps') {
    for (const k of transportKeys(key, r.delimiters)) {
      value = await chain.get(k);
      if (value !== null) {
        matched = k;
        break;
      }
    }
  } else if (key.lastIndexOf('@') > 0) {
    const m = await lookupAddress(chain, key, { delimiters: r.delimiters, userForm: isLocal });
    if (m) [matched, value] = [m.key, m.value];
  } else {
    value = await chain.get(key);
    if (value !== null) matched = key.toLowerCase();
  }
  if (matched === null || value === null) return { map: name, key, found: false };
  const answer: MapAnswer = { map: name, key, found: true, matched_key: matched, value };
  const source = await sourceOf(chain, matched);
  if (source) answer.source = source;
  if (name === 'transport_maps') {
    const domain = key.slice(key.lastIndexOf('@') + 1).toLowerCase();
    answer.transport = describeTransport(resolveSpec(parseTransport(value), domain));
  } else if (name === 'virtual_alias_maps' && key.lastIndexOf('@') > 0) {
    const single: LookupMap = { name: chain.name, get: async (k) => (k === matched ? value : null) };
    const step = await virtualStep(key, {
      maps: single,
      delimiters: r.delimiters,
      isLocal,
      myorigin: r.settings.myorigin ?? r.hostname,
      propagateExtension: r.settings.propagate_unmatched_extensions.includes('virtual'),
    });
    if (step?.kind === 'targets') answer.targets = step.targets;
    if (step?.kind === 'error') answer.error = step.reason;
  }
  return answer;
}

function human(a: MapAnswer): string {
  if (!a.found) return `${a.map}: ${a.key} not found\n`;
  const shown = a.transport ?? (a.targets ? a.targets.join(', ') : undefined) ?? (a.error ? `error:${a.error}` : a.value);
  return `${a.map}: ${a.key} -> ${shown} (key ${a.matched_key}${a.source ? ` in ${a.source}` : ''})\n`;
}

const commands: Record<string, Command> = {
  test: {
    synopsis: 'test NAME KEY',
    summary: 'show what KEY resolves to in the lookup table NAME',
    details: `NAME is one of ${MAP_NAMES.join(', ')}.\nKEY is an address (searched in Postfix's order), a domain or a table key.\nExit 1 when KEY has no entry.\n`,
    args: { min: 2, max: 2 },
    run: async (args, io) => {
      const [name = '', key = ''] = args.positionals;
      if (!(MAP_NAMES as readonly string[]).includes(name)) {
        throw new UsageError(`map test: unknown map "${name}" (expected ${MAP_NAMES.join(', ')})`, 'map test');
      }
      const mapName = name as MapName;
      const loaded = await loadRoutingSettings(args.config);
      if (loaded.settings[mapName] === undefined) throw new CliError(`${mapName} is not configured in ${args.config}`);
      let chain: MapChain | undefined;
      try {
        chain = (await openRoutingMaps(loaded.settings, { baseDir: loaded.baseDir, only: [mapName] })).maps[mapName];
      } catch (err) {
        if (isMapError(err)) throw new CliError(err.message, { cause: err });
        throw err;
      }
      if (!chain) throw new CliError(`${mapName} is not configured in ${args.config}`);
      const answer = await resolveKey(mapName, chain, key, loaded);
      emit(io, args.json, answer, () => human(answer));
      return answer.found ? 0 : 1;
    },
  },
};

export function runMap(argv: string[], io: Io): Promise<number> {
  return runGroup('map', 'Query the routing lookup tables (canonical, virtual alias, transport).', commands, argv, io);
}
