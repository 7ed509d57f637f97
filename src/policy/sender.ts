/*
 * MAIL-time policy: on a submission listener the authenticated user may use as envelope sender only
 * their own address (with or without a subaddress extension) or an alias that leads to them through
 * the directory; the null sender is always allowed. A catch-all alias never grants ownership. Other
 * listeners accept any sender. Store errors propagate (451 4.3.0); this module never writes.
 */
import type { SenderQuery, SenderVerdict } from '../smtp/services.js';
import type { Store } from '../store/index.js';
import { isStoreError } from '../store/index.js';
import { isPlainDomain, isPlainLocalPart, localKey, splitAddress, stripSubaddress } from './address.js';

export interface SenderPolicyOptions {
  store: Store;
  delimiters: string;
  /** how many alias levels are followed (virtual_alias_recursion_limit) */
  recursionLimit: number;
}

export type SenderPolicy = (query: SenderQuery) => Promise<SenderVerdict>;

/** The address in the form the directory stores, subaddress removed; null when it has routing syntax. */
function baseAddress(address: string, delimiters: string): string | null {
  const split = splitAddress(address);
  if (!split || !isPlainLocalPart(split.local) || !isPlainDomain(split.domain)) return null;
  return localKey(stripSubaddress(split.local, delimiters) ?? split.local, split.domain);
}

async function aliasTargets(store: Store, source: string): Promise<string[]> {
  try {
    return (await store.directory.getAlias(source))?.targets ?? [];
  } catch (err) {
    if (isStoreError(err, 'invalid')) return [];
    throw err;
  }
}

/** Breadth-first over exact aliases only, bounded in depth and by a visited set (loops end). */
async function leadsTo(store: Store, start: string, user: string, options: SenderPolicyOptions): Promise<boolean> {
  const seen = new Set<string>([start]);
  let level = [start];
  for (let depth = 0; depth < options.recursionLimit && level.length > 0; depth++) {
    const next: string[] = [];
    for (const source of level) {
      for (const target of await aliasTargets(store, source)) {
        const base = baseAddress(target, options.delimiters);
        if (base === null || seen.has(base)) continue;
        if (base === user) return true;
        seen.add(base);
        next.push(base);
      }
    }
    level = next;
  }
  return false;
}

export function createSenderPolicy(options: SenderPolicyOptions): SenderPolicy {
  return async ({ client, sender }) => {
    if (!client.submission || sender === '') return { action: 'accept' };
    if (client.authUser === null) return { action: 'reject', code: 530, enhanced: '5.7.0', text: 'Authentication required' };
    const user = client.authUser.toLowerCase();
    const base = baseAddress(sender, options.delimiters);
    if (base !== null && (base === user || (await leadsTo(options.store, base, user, options)))) return { action: 'accept' };
    return {
      action: 'reject',
      code: 553,
      enhanced: '5.7.1',
      text: `<${sender}>: Sender address rejected: not owned by user ${client.authUser}`,
    };
  };
}
