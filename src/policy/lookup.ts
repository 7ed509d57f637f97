/*
 * One directory step for an address of a local domain, in Postfix's virtual(5) order: the address
 * itself (account or alias), then without its subaddress extension, then the domain's catch-all
 * alias (`@domain`). Never follows alias targets (queue/expand.ts does) and never looks up a local
 * part with routing syntax: that is an unknown user. Store errors other than `invalid` propagate.
 */
import type { Account, Alias, Store } from '../store/index.js';
import { isStoreError } from '../store/index.js';
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
