/*
 * Turns the routing settings into live tables: each *_maps key becomes one MapChain of inline, file and
 * store tables (file paths relative to the configuration file's directory), every value checked for its
 * role at open (a bad transport or virtual target names file and line), and one reload() for SIGHUP /
 * `cartero reload`. Store tables (`{ store: NAME }`) are kept fresh by one StoreMapWatcher (store-map.ts)
 * until close(). Opening fails with MapError; a failed reload keeps every old table and says why.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { FileMap, inlineMap, isMapError, MapChain, MapError, type LookupMap, type ValueCheck } from './maps.js';
import { AddressRewriter } from './rewrite.js';
import { StoreMap, StoreMapWatcher, type StoreMapReader } from './store-map.js';
import { MAP_NAMES, type HeaderRewriteClient, type MapListSetting, type MapName, type RoutingSettings } from './settings.js';
import type { RouterSettings } from './transport.js';
import { transportProblem } from './transport.js';
import { virtualValueProblem, type VirtualAliasOptions } from './virtual.js';

const STORE_MAP_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/i;

const CHECKS: Partial<Record<MapName, ValueCheck>> = {
  transport_maps: transportProblem,
  virtual_alias_maps: virtualValueProblem,
};

export interface RoutingMaps {
  /** the chain of each configured map key (absent keys are missing) */
  readonly maps: Partial<Record<MapName, MapChain>>;
  /** Re-reads every file and store table; tables that fail keep their old contents; rejects with the first MapError. */
  reload(): Promise<void>;
  /** Stops watching the store tables (they keep their last contents). */
  close(): Promise<void>;
}

export interface OpenMapsOptions {
  /** directory relative file paths are resolved against (the configuration file's) */
  baseDir: string;
  logger?: Logger;
  /** open only these tables (`cartero map test` opens the one it is asked about) */
  only?: readonly MapName[];
  /** where `{ store: NAME }` tables are read; opening one without it fails with MapError */
  store?: StoreMapReader;
  /** keep store tables fresh (default true); `cartero map test` reads them once */
  watch?: boolean;
  /** how often the store is asked whether a store table changed (default 500 ms) */
  storeMapIntervalMs?: number;
}

/** The table name of a `{ store: NAME }` source (exactly that one key), else null. */
function storeSourceName(source: MapListSetting): string | null {
  return 'store' in source && typeof source.store === 'string' && Object.keys(source).length === 1 ? source.store : null;
}

function sources(setting: MapListSetting): MapListSetting[] {
  return Array.isArray(setting) ? setting : [setting];
}

async function openChain(name: MapName, setting: MapListSetting, o: OpenMapsOptions, storeMaps: StoreMap[]): Promise<MapChain> {
  const check = CHECKS[name];
  const list = sources(setting);
  const maps: LookupMap[] = [];
  for (const [i, source] of list.entries()) {
    const label = list.length > 1 || Array.isArray(setting) ? `${name}[${i}]` : name;
    const store = storeSourceName(source);
    if ('file' in source && typeof source.file === 'string') {
      const path = isAbsolute(source.file) ? source.file : resolve(o.baseDir, source.file);
      maps.push(
        await FileMap.open(path, {
          ...(check ? { check } : {}),
          onDuplicate: (d) =>
            o.logger?.warn({ map: name, file: d.source, line: d.line }, `${d.source}, line ${d.line}: duplicate entry "${d.key}" ignored (first at line ${d.firstLine})`),
        }),
      );
    } else if (store !== null) {
      // a name the schema did not take as a store name arrives here as an inline table with one key "store"
      if (!STORE_MAP_NAME.test(store)) {
        throw new MapError('syntax', label, 0, `{ store: ${JSON.stringify(store)} }: a store map name is letters, digits, "_", "." and "-", at most 64`);
      }
      if (!o.store) throw new MapError('io', `store:${store}`, 0, `${label}: a store table needs the store, and none was given`);
      const map = await StoreMap.open(store, o.store, { ...(check ? { check } : {}), ...(o.logger ? { logger: o.logger } : {}) });
      storeMaps.push(map);
      maps.push(map);
    } else {
      maps.push(inlineMap(label, source as Record<string, string | string[]>, check));
    }
  }
  return new MapChain(maps);
}

/** Opens every configured table. Throws MapError for the first table that cannot be loaded. */
export async function openRoutingMaps(settings: RoutingSettings, o: OpenMapsOptions): Promise<RoutingMaps> {
  const maps: Partial<Record<MapName, MapChain>> = {};
  const storeMaps: StoreMap[] = [];
  for (const name of MAP_NAMES) {
    const setting = settings[name];
    if (o.only && !o.only.includes(name)) continue;
    if (setting !== undefined) maps[name] = await openChain(name, setting, o, storeMaps);
  }
  const watcher =
    o.store && storeMaps.length > 0 && o.watch !== false
      ? new StoreMapWatcher(o.store, storeMaps, { ...(o.storeMapIntervalMs !== undefined ? { intervalMs: o.storeMapIntervalMs } : {}), ...(o.logger ? { logger: o.logger } : {}) })
      : null;
  watcher?.start();
  return {
    maps,
    async reload() {
      const chains = Object.values(maps);
      const results = await Promise.allSettled(chains.map((c) => c.reload()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async close() {
      await watcher?.close();
    },
  };
}

/** Which *_maps keys use each store table (`{ store: NAME }`), by lowercased store map name. */
export function storeMapUses(settings: RoutingSettings): Map<string, MapName[]> {
  const uses = new Map<string, MapName[]>();
  for (const name of MAP_NAMES) {
    const setting = settings[name];
    if (setting === undefined) continue;
    for (const source of sources(setting)) {
      const store = storeSourceName(source);
      if (store === null) continue;
      const key = store.toLowerCase();
      const list = uses.get(key) ?? [];
      if (!list.includes(name)) list.push(name);
      uses.set(key, list);
    }
  }
  return uses;
}

/**
 * The check a value of store table `mapName` must pass: that of every key using it (a table used as
 * both transport_maps and virtual_alias_maps must satisfy both); null when no key with a check uses it.
 */
export function storeMapCheck(settings: RoutingSettings, mapName: string): ValueCheck | null {
  const checks = (storeMapUses(settings).get(mapName.toLowerCase()) ?? []).flatMap((n) => {
    const c = CHECKS[n];
    return c ? [[n, c] as const] : [];
  });
  if (checks.length === 0) return null;
  return (value, key) => {
    for (const [n, c] of checks) {
      const problem = c(value, key);
      if (problem) return checks.length > 1 ? `${problem} (as ${n})` : problem;
    }
    return null;
  };
}

/**
 * Calls `maps.reload()` on each SIGHUP (or whatever `signal` names) and logs the outcome; returns the
 * function that removes the handler. A failed reload is logged with file and line; the old tables stay.
 */
export function reloadOnSignal(maps: RoutingMaps, logger: Logger, target: NodeJS.EventEmitter = process, signal = 'SIGHUP'): () => void {
  const handler = (): void => {
    maps.reload().then(
      () => logger.info({ event: 'maps_reloaded' }, 'lookup tables reloaded'),
      (err: unknown) => {
        if (isMapError(err)) {
          logger.error({ event: 'maps_reload_failed', file: err.source, line: err.line }, `lookup table reload failed, previous tables kept: ${err.message}`);
        } else {
          logger.error({ err, event: 'maps_reload_failed' }, 'lookup table reload failed, previous tables kept');
        }
      },
    );
  };
  target.on(signal, handler);
  return () => void target.off(signal, handler);
}

export interface RoutingContext {
  /** domains whose bare `user` keys apply and that are delivered locally */
  isLocal: (domain: string) => Promise<boolean>;
  /** recipient_delimiter */
  delimiters: string;
  /** default for myorigin: the node's hostname */
  hostname: string;
  logger?: Logger;
}

/** The commit-time rewriter (null when nothing is configured). */
export function buildRewriter(settings: RoutingSettings, maps: RoutingMaps, ctx: RoutingContext): AddressRewriter | null {
  const rewriter = new AddressRewriter({
    canonical: maps.maps.canonical_maps ?? null,
    senderCanonical: maps.maps.sender_canonical_maps ?? null,
    recipientCanonical: maps.maps.recipient_canonical_maps ?? null,
    masquerade: settings.masquerade_domains.length > 0 ? { domains: settings.masquerade_domains, exceptions: settings.masquerade_exceptions } : null,
    masqueradeClasses: settings.masquerade_classes,
    delimiters: ctx.delimiters,
    isLocal: ctx.isLocal,
    myorigin: settings.myorigin ?? ctx.hostname,
    propagateExtension: settings.propagate_unmatched_extensions.includes('canonical'),
    onLoop: (address, map) => ctx.logger?.warn({ map, address }, `${map}: unreasonable canonical map nesting for ${address}`),
  });
  return rewriter.active ? rewriter : null;
}

/** The virtual alias step options for queue/expand.ts (null when no virtual_alias_maps). */
export function buildVirtual(settings: RoutingSettings, maps: RoutingMaps, ctx: RoutingContext): VirtualAliasOptions | null {
  // virtual_alias_domains without tables: every address there is unknown (an empty chain says so).
  const chain = maps.maps.virtual_alias_maps ?? (settings.virtual_alias_domains.length > 0 ? new MapChain([]) : null);
  if (!chain) return null;
  return {
    maps: chain,
    delimiters: ctx.delimiters,
    isLocal: ctx.isLocal,
    myorigin: settings.myorigin ?? ctx.hostname,
    propagateExtension: settings.propagate_unmatched_extensions.includes('virtual'),
    aliasDomains: new Set(settings.virtual_alias_domains.map((d) => d.toLowerCase())),
  };
}

/**
 * Router settings from the routing settings; `extraTransports` is the existing top-level `transports`
 * mapping (searched after transport_maps). Reads relayhost.auth.password_file (relative to baseDir).
 */
export function buildRouterSettings(
  settings: RoutingSettings,
  maps: RoutingMaps,
  o: { delimiters: string; baseDir: string; extraTransports?: Record<string, string> },
): RouterSettings {
  const chains: LookupMap[] = [];
  if (maps.maps.transport_maps) chains.push(maps.maps.transport_maps);
  if (o.extraTransports && Object.keys(o.extraTransports).length > 0) chains.push(inlineMap('transports', o.extraTransports, transportProblem));
  const rh = settings.relayhost;
  let relayhost: RouterSettings['relayhost'];
  if (rh) {
    let auth: { username: string; password: string } | undefined;
    if (rh.auth) {
      const file = rh.auth.password_file;
      const password = file !== undefined ? readFileSync(isAbsolute(file) ? file : resolve(o.baseDir, file), 'utf8').replace(/\r?\n$/, '') : (rh.auth.password ?? '');
      auth = { username: rh.auth.username, password };
    }
    relayhost = { host: rh.host, port: rh.port, mx_lookup: rh.mx_lookup, auth, tls: rh.tls };
  }
  return {
    transportMaps: chains.length === 0 ? null : chains.length === 1 ? chains[0]! : new MapChain(chains),
    relayTransport: settings.relay_transport,
    ...(relayhost ? { relayhost } : {}),
    delimiters: o.delimiters,
  };
}

/**
 * local_header_rewrite_clients as a predicate on the envelope meta the SMTP session records: header
 * addresses are rewritten for mail from mynetworks, from authenticated clients, or from everyone
 * (`static:all`); mail with no client at all (the local sendmail command) is always local.
 */
export function headerRewritePolicy(
  clients: readonly HeaderRewriteClient[],
  inMynetworks: (address: string) => boolean,
): (meta: Record<string, unknown>) => boolean {
  return (meta) => {
    if (clients.includes('static:all')) return true;
    const client = meta.client;
    if (client === undefined || client === null) return true;
    if (clients.includes('permit_sasl_authenticated') && typeof meta.auth_user === 'string' && meta.auth_user !== '') return true;
    return clients.includes('permit_mynetworks') && typeof client === 'string' && inMynetworks(client);
  };
}
