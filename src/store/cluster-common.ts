/*
 * Checks and keys shared by both backends' cluster stores: what a node may call itself, what a job may
 * be named, and the advisory lock key of a job. Pure; bad input is a StoreError `invalid`, so a node
 * name with control characters or an absurd heartbeat never reaches a table or an admin's terminal.
 */
import { createHash } from 'node:crypto';
import type { NodeInfo } from './api.js';
import { StoreError } from './errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;
const ROLE = /^[a-z0-9][a-z0-9-]{0,31}$/;
const JOB = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const VERSION = /^[\x21-\x7e]{1,64}$/;
const MAX_ROLES = 32;
export const MIN_HEARTBEAT_MS = 100;
export const MAX_HEARTBEAT_MS = 3_600_000;

/** 'cart' in ASCII: the first key of every singleton job's two-key advisory lock. */
export const JOB_LOCK_NAMESPACE = 0x63617274;

function bad(what: string, value: unknown, expected: string): never {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : String(value);
  throw new StoreError('invalid', `cluster: ${what} ${shown}: expected ${expected}`);
}

export function checkNodeName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) bad('node name', name, 'letters, digits and . _ : @ - (at most 255)');
  return name;
}

export function checkJobName(job: unknown): string {
  if (typeof job !== 'string' || !JOB.test(job)) bad('job name', job, 'lowercase letters, digits and . _ - (at most 63)');
  return job;
}

export function checkNodeInfo(node: NodeInfo): NodeInfo {
  checkNodeName(node.name);
  if (typeof node.hostname !== 'string' || !NAME.test(node.hostname)) bad('hostname', node.hostname, 'a host name');
  if (!Number.isSafeInteger(node.pid) || node.pid <= 0 || node.pid > 0x7fffffff) bad('pid', node.pid, 'a positive integer');
  if (!Array.isArray(node.roles) || node.roles.length > MAX_ROLES) bad('roles', node.roles, `at most ${MAX_ROLES} roles`);
  for (const r of node.roles) if (typeof r !== 'string' || !ROLE.test(r)) bad('role', r, 'lowercase letters, digits and - (at most 32)');
  if (typeof node.version !== 'string' || !VERSION.test(node.version)) bad('version', node.version, 'printable text without spaces (at most 64)');
  if (!Number.isSafeInteger(node.heartbeatMs) || node.heartbeatMs < MIN_HEARTBEAT_MS || node.heartbeatMs > MAX_HEARTBEAT_MS) {
    bad('heartbeat interval', node.heartbeatMs, `${MIN_HEARTBEAT_MS}..${MAX_HEARTBEAT_MS} ms`);
  }
  return { name: node.name, hostname: node.hostname, pid: node.pid, roles: [...new Set(node.roles)].sort(), version: node.version, heartbeatMs: node.heartbeatMs };
}

/** The second advisory lock key of a job: 31 bits of its name's sha256 (non-negative, so pg_locks.objid reads it back as is). */
export function jobLockKey(job: string): number {
  return createHash('sha256').update(job).digest().readUInt32BE(0) & 0x7fffffff;
}
