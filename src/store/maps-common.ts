/*
 * Pure rules both backends apply to lookup maps kept in the store: what a map name, a key and a value
 * may be, and the page size of a listing. Throws StoreError `invalid` with the offending text quoted.
 * The meaning of a value (a transport, an address list) is checked above the store, by its role.
 */
import { StoreError } from './errors.js';

/** Longest key: an address is at most 254 octets; a little room for Postfix's `.parent` forms. */
export const MAX_MAP_KEY = 1024;
/** Longest value, the same bound as one logical line of a map file (routing/maps.ts MAX_LOGICAL_LINE). */
export const MAX_MAP_VALUE = 64 * 1024;
export const DEFAULT_MAP_PAGE = 1000;
export const MAX_MAP_PAGE = 10_000;

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function normalizeMapName(name: string): string {
  const n = name.trim().toLowerCase();
  if (!NAME.test(n)) throw new StoreError('invalid', `invalid map name ${JSON.stringify(name)}: letters, digits, "_", "." and "-", at most 64, starting with a letter or digit`);
  return n;
}

/** Keys are one word, lowercased, as postmap(1) folds them. */
export function normalizeMapKey(key: string): string {
  const k = key.trim().toLowerCase();
  if (k === '') throw new StoreError('invalid', 'a map key cannot be empty');
  if (/[\s\x00-\x1f\x7f]/.test(k)) throw new StoreError('invalid', `invalid map key ${JSON.stringify(key)}: a key is one word without control characters`);
  if (k.length > MAX_MAP_KEY) throw new StoreError('invalid', `map key longer than ${MAX_MAP_KEY} characters`);
  return k;
}

export function normalizeMapValue(value: string, key: string): string {
  const v = value.trim();
  if (v === '') throw new StoreError('invalid', `${key}: empty value`);
  if (/[\x00\r\n]/.test(v)) throw new StoreError('invalid', `${key}: a value cannot hold NUL or line breaks`);
  if (v.length > MAX_MAP_VALUE) throw new StoreError('invalid', `${key}: value longer than ${MAX_MAP_VALUE} characters`);
  return v;
}

/** Normalises a whole map's content for replace(); a key given twice (after lowercasing) is `invalid`. */
export function normalizeMapEntries(entries: readonly { key: string; value: string }[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const key = normalizeMapKey(e.key);
    if (out.has(key)) throw new StoreError('invalid', `map key ${JSON.stringify(key)} given twice (keys are case-insensitive)`);
    out.set(key, normalizeMapValue(e.value, key));
  }
  return out;
}

export function mapPageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_MAP_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreError('invalid', `map list limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_MAP_PAGE);
}
