/*
 * Who this node is, for the cluster registry: its name (the configured hostname unless given), the
 * machine, the process and what it serves. Pure apart from reading os.hostname() and process.pid;
 * the version comes from package.json once, "unknown" when it cannot be read.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { configuredListeners } from '../config/schema.js';
import type { NodeInfo } from '../store/api.js';

/** The default heartbeat interval; a node is shown dead after DEFAULT_MISSED_HEARTBEATS missed ones. */
export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_MISSED_HEARTBEATS = 3;

let cachedVersion: string | null = null;

export function carteroVersion(): string {
  if (cachedVersion !== null) return cachedVersion;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cachedVersion = typeof pkg.version === 'string' && /^[\x21-\x7e]{1,64}$/.test(pkg.version) ? pkg.version : 'unknown';
  } catch {
    cachedVersion = 'unknown';
  }
  return cachedVersion;
}

/** The protocols with listeners (submission counted apart from smtp), plus the background duties. */
export function rolesOf(config: Config, duties: { delivery?: boolean; jobs?: boolean } = {}): string[] {
  const roles = new Set<string>();
  for (const l of configuredListeners(config)) roles.add(l.proto === 'smtp' && l.submission ? 'submission' : l.proto);
  if (duties.delivery !== false) roles.add('delivery');
  if (duties.jobs !== false) roles.add('jobs');
  return [...roles].sort();
}

export interface NodeIdentityOptions {
  /** default: config.hostname */
  name?: string;
  heartbeatMs?: number;
  delivery?: boolean;
  jobs?: boolean;
}

export function nodeIdentity(config: Config, options: NodeIdentityOptions = {}): NodeInfo {
  return {
    name: options.name ?? config.hostname,
    hostname: hostname(),
    pid: process.pid,
    roles: rolesOf(config, options),
    version: carteroVersion(),
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
  };
}
