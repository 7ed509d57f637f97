/*
 * Pure helpers shared by both backends: identifiers, hashing, normalisation and UID ranges.
 * No I/O here, so both backends compute the same values the same way.
 */
import * as crypto from 'node:crypto';
import { randomView } from '../random-pool.js';
import type { BlobId, NewMessage, UidRange } from './api.js';
import { StoreError } from './errors.js';

const QUEUE_ID_ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZ';

/**
 * Queue ids sort by creation time (base-31 milliseconds) and end in random characters, like Postfix's
 * long queue ids, so logs and `cartero queue list` read in arrival order.
 */
export function newQueueId(now: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(now));
  for (let i = 0; i < 9; i++) {
    time = QUEUE_ID_ALPHABET[t % 31] + time;
    t = Math.floor(t / 31);
  }
  const rnd = randomView(7);
  let tail = '';
  for (const b of rnd) tail += QUEUE_ID_ALPHABET[b % 31];
  return time + tail;
}

/** crypto.hash (Node 20.12+): one call, no Hash object — the cost that dominates for a few KB. */
const oneShot: ((algorithm: string, data: Buffer, encoding: 'hex') => string) | undefined = (crypto as { hash?: typeof crypto.hash }).hash;

export function sha256(content: Buffer): BlobId {
  return oneShot ? oneShot('sha256', content, 'hex') : crypto.createHash('sha256').update(content).digest('hex');
}

/** A message's own prefix as stored (NewMessage.prefix): null for none and for an empty one. */
export function storedPrefix<T extends Uint8Array>(prefix: T | null | undefined): T | null {
  return prefix && prefix.length > 0 ? prefix : null;
}

/** NewMessage.prefix as stored; `invalid` next to `content` (a prefix goes over a shared blob). */
export function appendPrefix(message: NewMessage): Buffer | null {
  if (message.content && message.prefix) throw new StoreError('invalid', 'append: a prefix goes with a blobId, not with content');
  return storedPrefix(message.prefix);
}

/** A message's bytes: its own prefix, then its blob's. */
export function withPrefix<T extends Uint8Array>(prefix: Uint8Array | null, bytes: T): T | Buffer {
  return prefix === null || prefix.length === 0 ? bytes : Buffer.concat([prefix, bytes]);
}

export function verifyBlob(id: BlobId, content: Buffer): Buffer {
  if (sha256(content) !== id) throw new StoreError('corrupt', `blob ${id} does not match its hash`);
  return content;
}

export function normalizeDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (!/^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/.test(d)) {
    throw new StoreError('invalid', `invalid domain name "${domain}"`);
  }
  return d;
}

/** `local@domain` (or `@domain` when `allowCatchAll`) lowercased; returns [address, domain]. */
export function normalizeAddress(address: string, allowCatchAll = false): [string, string] {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at < 0) throw new StoreError('invalid', `invalid address "${address}": no domain`);
  const local = a.slice(0, at).toLowerCase();
  const domain = normalizeDomain(a.slice(at + 1));
  if (local === '' && !allowCatchAll) throw new StoreError('invalid', `invalid address "${address}": empty local part`);
  if (local.length > 64 || /[\s\x00-\x1f\x7f<>()\[\]\\,;:"@]/.test(local)) {
    throw new StoreError('invalid', `invalid address "${address}": bad local part`);
  }
  return [`${local}@${domain}`, domain];
}

export function uidInRanges(uid: number, ranges: UidRange[]): boolean {
  for (const r of ranges) if (uid >= r.from && uid <= r.to) return true;
  return false;
}

/** SQL-friendly form: sorted, merged, clamped to safe integers. */
export function mergeRanges(ranges: UidRange[]): UidRange[] {
  const sorted = ranges
    .map((r) => ({ from: Math.max(1, Math.min(r.from, r.to)), to: Math.min(Number.MAX_SAFE_INTEGER, Math.max(r.from, r.to)) }))
    .sort((a, b) => a.from - b.from);
  const out: UidRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

/** Flags are kept sorted and unique; system flags keep their backslash, keywords their case. */
export function normalizeFlags(flags: readonly string[]): string[] {
  const seen = new Map<string, string>();
  for (const f of flags) {
    if (f.length === 0 || f.length > 128 || /[\x00-\x20\x7f(){%*"\]]/.test(f)) {
      throw new StoreError('invalid', `invalid flag "${f}"`);
    }
    const key = f.toLowerCase();
    if (!seen.has(key)) seen.set(key, f);
  }
  return [...seen.values()].sort();
}

export function applyFlagOperation(current: readonly string[], op: 'add' | 'remove' | 'replace', flags: readonly string[]): string[] {
  if (op === 'replace') return normalizeFlags(flags);
  const lower = new Set(flags.map((f) => f.toLowerCase()));
  if (op === 'remove') return current.filter((f) => !lower.has(f.toLowerCase()));
  return normalizeFlags([...current, ...flags]);
}

export function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((f, i) => f === b[i]);
}

/** UIDVALIDITY: seconds since the epoch, as most servers do, kept positive in 32 bits. */
export function newUidValidity(now: number): number {
  return (Math.floor(now / 1000) % 0xfffffffe) + 1;
}
