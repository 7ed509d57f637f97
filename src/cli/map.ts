/*
 * `cartero map test NAME KEY`: what KEY resolves to in one routing table (canonical, virtual alias or
 * transport maps), searched the way commit and the router search it — Postfix's address order, or
 * transport(5)'s address/domain/parent-domain order — like `postmap -q` with the routing rules on top.
 * Reads only the routing keys of the configuration file and the tables they name; the store only when
 * the table includes a `{ store: NAME }` source. A key with no entry prints "not found" and exits 1
 * (as postmap -q does).
 * `cartero map set|delete|list|import`: the tables kept in the store, shared by every node. A value is
 * checked for the role of every *_maps key that uses the table (a bad transport is refused before it is
 * stored); an import replaces the table's whole content in one transaction. Every change is logged on
 * standard error and in the store's admin log with who made it (queue-audit.ts), target `map:NAME`.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { parseYaml } from '../config/load.js';
import { expectedText, issuesToProblems } from '../config/problems.js';
import { isMapError, lookupAddress, MapChain, parseMapText, readMapText, type LookupMap } from '../routing/maps.js';
import { openRoutingMaps, storeMapCheck, storeMapUses } from '../routing/open.js';
import { MAP_NAMES, routingSettingsSchema, type MapName, type RoutingSettings } from '../routing/settings.js';
import { describeTransport, parseTransport, resolveSpec, transportKeys } from '../routing/transport.js';
import { virtualStep } from '../routing/virtual.js';
import { isStoreError, type Store, type StoredMapEntry } from '../store/index.js';
import { CliError, runGroup, UsageError, type Command } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { emit, formatTime, table } from './output.js';
import { actorName, createAudit, currentActor } from './queue-audit.js';

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
    const spec = parseTransport(value);
    // `:` and `:[host]` depend on the address class (local, relay_domains, other), which the router knows
    answer.transport =
      spec.kind === 'default'
        ? spec.nexthop
          ? `the default transport of the domain's class, nexthop ${describeTransport(spec).slice(1)}`
          : 'no change: the routing without the table'
        : describeTransport(resolveSpec(spec, domain));
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
      const usesStore = [...storeMapUses(loaded.settings).values()].some((keys) => keys.includes(mapName));
      const resolve = async (store?: Store): Promise<MapAnswer> => {
        let chain: MapChain | undefined;
        try {
          const opened = await openRoutingMaps(loaded.settings, { baseDir: loaded.baseDir, only: [mapName], watch: false, ...(store ? { store: store.maps } : {}) });
          chain = opened.maps[mapName];
        } catch (err) {
          if (isMapError(err)) throw new CliError(err.message, { cause: err });
          throw err;
        }
        if (!chain) throw new CliError(`${mapName} is not configured in ${args.config}`);
        return resolveKey(mapName, chain, key, loaded);
      };
      const answer = usesStore ? await withStore(args.config, (store) => resolve(store)) : await resolve();
      emit(io, args.json, answer, () => human(answer));
      return answer.found ? 0 : 1;
    },
  },
};

// ---------------------------------------------------------------- tables kept in the store

/** Entries read per query by `map list`. */
const LIST_PAGE = 1000;

/** The value check for store table `name` from the configuration, with a note when no key uses it. */
function checkFor(config: Config, name: string, io: Io, file: string): ((value: string, key: string) => string | null) | null {
  const check = storeMapCheck(config, name);
  if (!storeMapUses(config).has(name.toLowerCase())) {
    io.err(`note: no *_maps key of ${file} uses { store: ${name} }; values are stored unchecked\n`);
  }
  return check;
}

const STORE_ERRORS = (name: string) => ({ unavailable: `the store is unavailable; map ${name} unchanged` });

/** A malformed name, key or value (StoreError `invalid`) is the administrator's to fix: its message, exit 1. */
function invalidToCli<T>(work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    if (isStoreError(err, 'invalid')) throw new CliError(err.message, { cause: err });
    throw err;
  });
}

interface EntryView {
  key: string;
  value: string;
  updated_at: string;
  updated_by: string | null;
}

const entryView = (e: StoredMapEntry): EntryView => ({ key: e.key, value: e.value, updated_at: new Date(e.updatedAt).toISOString(), updated_by: e.updatedBy });

const storeCommands: Record<string, Command> = {
  set: {
    synopsis: 'set NAME KEY VALUE',
    summary: 'add or change KEY in the store table NAME (seen by every node within a second)',
    details: 'The value is checked as every *_maps key using { store: NAME } requires (a transport, an address list).\n',
    args: { min: 3, max: 3 },
    run: async (args, io) => {
      const [name = '', key = '', value = ''] = args.positionals;
      return withStore(args.config, async (store, config) => {
        const check = checkFor(config, name, io, args.config);
        const problem = check?.(value.trim(), key.trim().toLowerCase());
        if (problem) throw new CliError(`map ${name}: ${key}: ${problem}; nothing changed`);
        const by = actorName(currentActor());
        const r = await invalidToCli(explain(store.maps.set(name, key, value, by, Date.now()), STORE_ERRORS(name)));
        const k = key.trim().toLowerCase();
        await createAudit({ store, config, io }).record(r.created ? 'map_add' : 'map_change', `map:${name.toLowerCase()}`, `${k} ${value.trim()}`);
        emit(io, args.json, { map: name.toLowerCase(), key: k, value: value.trim(), created: r.created, generation: r.generation }, () =>
          `map ${name.toLowerCase()}: ${k} ${r.created ? 'added' : 'changed'} (generation ${r.generation})\n`,
        );
        return 0;
      });
    },
  },
  delete: {
    synopsis: 'delete NAME KEY',
    summary: 'remove KEY from the store table NAME',
    args: { min: 2, max: 2 },
    run: async (args, io) => {
      const [name = '', key = ''] = args.positionals;
      return withStore(args.config, async (store, config) => {
        const k = key.trim().toLowerCase();
        const generation = await invalidToCli(
          explain(store.maps.delete(name, key, actorName(currentActor()), Date.now()), { ...STORE_ERRORS(name), not_found: `map ${name.toLowerCase()} has no entry ${k}` }),
        );
        await createAudit({ store, config, io }).record('map_delete', `map:${name.toLowerCase()}`, k);
        emit(io, args.json, { map: name.toLowerCase(), key: k, deleted: true, generation }, () => `map ${name.toLowerCase()}: ${k} deleted (generation ${generation})\n`);
        return 0;
      });
    },
  },
  list: {
    synopsis: 'list [NAME]',
    summary: 'list the entries of the store table NAME, or every store table',
    args: { min: 0, max: 1 },
    run: async (args, io) => {
      const name = args.positionals[0];
      return withStore(args.config, async (store) => {
        if (name === undefined) {
          const maps = await store.maps.maps();
          const views = maps.map((m) => ({ name: m.name, entries: m.entries, generation: m.generation, updated_at: new Date(m.updatedAt).toISOString() }));
          emit(io, args.json, views, () => table(['NAME', 'ENTRIES', 'GENERATION', 'UPDATED'], maps.map((m) => [m.name, String(m.entries), String(m.generation), formatTime(m.updatedAt)])));
          return 0;
        }
        const entries: StoredMapEntry[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await invalidToCli(store.maps.list(name, { ...(after === undefined ? {} : { after }), limit: LIST_PAGE }));
          entries.push(...page);
          if (page.length < LIST_PAGE) break;
          after = page[page.length - 1]!.key;
        }
        emit(io, args.json, entries.map(entryView), () =>
          table(['KEY', 'VALUE', 'UPDATED', 'BY'], entries.map((e) => [e.key, e.value, formatTime(e.updatedAt), e.updatedBy ?? '-'])),
        );
        return 0;
      });
    },
  },
  import: {
    synopsis: 'import NAME FILE',
    summary: "replace the whole store table NAME with FILE (Postfix's key value text, as postmap reads it)",
    details: 'The file is checked before anything changes; a malformed line names file and line.\nThe replacement is one transaction: every node sees the old table or the new one.\n',
    args: { min: 2, max: 2 },
    run: async (args, io) => {
      const [name = '', file = ''] = args.positionals;
      return withStore(args.config, async (store, config) => {
        const check = checkFor(config, name, io, args.config);
        let entries: { key: string; value: string }[];
        try {
          const parsed = parseMapText(await readMapText(file), file, check ?? undefined);
          for (const d of parsed.duplicates) io.err(`${file}, line ${d.line}: duplicate entry "${d.key}" ignored (first at line ${d.firstLine})\n`);
          entries = [...parsed.entries].map(([key, value]) => ({ key, value }));
        } catch (err) {
          if (isMapError(err)) throw new CliError(`${err.message}; map ${name} unchanged`, { cause: err });
          throw err;
        }
        const r = await invalidToCli(explain(store.maps.replace(name, entries, actorName(currentActor()), Date.now()), STORE_ERRORS(name)));
        const summary = `${entries.length} entries: ${r.added} added, ${r.changed} changed, ${r.removed} removed, ${r.unchanged} unchanged`;
        await createAudit({ store, config, io }).record('map_import', `map:${name.toLowerCase()}`, `${file}: ${summary}`);
        emit(io, args.json, { map: name.toLowerCase(), file, entries: entries.length, ...r }, () => `map ${name.toLowerCase()}: imported ${file}, ${summary} (generation ${r.generation})\n`);
        return 0;
      });
    },
  },
};

Object.assign(commands, storeCommands);

export function runMap(argv: string[], io: Io): Promise<number> {
  return runGroup('map', 'Query the routing lookup tables (canonical, virtual alias, transport) and manage those kept in the store.', commands, argv, io);
}
