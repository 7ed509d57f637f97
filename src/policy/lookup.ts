/*
 * One directory step for an address of a local domain, in Postfix's virtual(5) order: the address
 * itself (account or alias), then without its subaddress extension, then the domain's catch-all
 * alias (`@domain`). Never follows alias targets (queue/expand.ts does) and never looks up a local
 * part with routing syntax: that is an unknown user. Store errors other than `invalid` propagate.
 */
import type { Account, Alias, Clock, Store } from '../store/index.js';
import { isStoreError } from '../store/index.js';
import { TtlCache } from '../ttl-cache.js';
import { isPlainLocalPart, localKey, stripSubaddress } from './address.js';

export type LocalTarget =
  | { kind: 'account'; account: Account }
  | { kind: 'alias'; alias: Alias; via: 'exact' | 'subaddress' | 'catch-all' }
  | { kind: 'unknown' };

async function orNullOnInvalid<T>(lookup: Promise<T | null>): Promise<T | null> {
  try {
    return await lookup;
  } catch (err) {
    if (isStoreError(err, 'invalid')) return null;
    throw err;
  }
}

async function exact(store: Store, address: string): Promise<[Account | null, Alias | null]> {
  return Promise.all([orNullOnInvalid(store.directory.getAccount(address)), orNullOnInvalid(store.directory.getAlias(address))]);
}

/** `domain` must already be known to be local (LocalDomains.isLocal). */
export async function lookupLocal(store: Store, local: string, domain: string, delimiters: string): Promise<LocalTarget> {
  if (!isPlainLocalPart(local)) return { kind: 'unknown' };
  const [account, alias] = await exact(store, localKey(local, domain));
  if (account) return { kind: 'account', account };
  if (alias) return { kind: 'alias', alias, via: 'exact' };
  const base = stripSubaddress(local, delimiters);
  if (base !== null) {
    const [baseAccount, baseAlias] = await exact(store, localKey(base, domain));
    if (baseAccount) return { kind: 'account', account: baseAccount };
    if (baseAlias) return { kind: 'alias', alias: baseAlias, via: 'subaddress' };
  }
  const catchAll = await orNullOnInvalid(store.directory.getAlias(`@${domain}`));
  if (catchAll) return { kind: 'alias', alias: catchAll, via: 'catch-all' };
  return { kind: 'unknown' };
}

export type LocalLookup = (local: string, domain: string) => Promise<LocalTarget>;

/** lookupLocal as a LocalLookup, every call asking the store. */
export function directLocalLookup(store: Store, delimiters: string): LocalLookup {
  return (local, domain) => lookupLocal(store, local, domain, delimiters);
}

/** Measured on the embedded store: an uncached lookup is a round trip to the reader worker per RCPT. */
export const DEFAULT_LOOKUP_CACHE_MS = 1000;

/**
 * lookupLocal with found accounts and aliases reused for `ms`: the RCPT check and the commit's alias
 * expansion of the same recipient a moment later share one store lookup. Only hits are kept: a new
 * account is found at once; a removed one may still be found for `ms` (its delivery then fails, as
 * with any race against removal). `ms` 0: ask the store every time.
 */
export function cachedLocalLookup(store: Store, delimiters: string, ms: number, clock: Clock): LocalLookup {
  if (ms <= 0) return directLocalLookup(store, delimiters);
  const hits = new TtlCache<LocalTarget>(ms);
  return async (local, domain) => {
    const key = `${local}\0${domain}`;
    const now = clock.now();
    const hit = hits.get(key, now);
    if (hit) return hit;
    const target = await lookupLocal(store, local, domain, delimiters);
    // an unknown answer also drops a hit stored meanwhile by a concurrent lookup: the newer answer wins
    if (target.kind === 'unknown') hits.delete(key);
    else hits.set(key, target, now);
    return target;
  };
}
