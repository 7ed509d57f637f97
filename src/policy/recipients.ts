/*
 * RCPT-time policy, Postfix's smtpd_relay_restrictions + local_recipient_maps: local domains accept only
 * known recipients (account, alias, subaddress, catch-all), relay_domains accept from anyone, any other
 * destination needs mynetworks or AUTH. Routing syntax in an address is never honoured: it is an unknown
 * user in a local domain and a foreign destination otherwise. Found accounts and aliases are reused
 * for a second (lookup.ts cachedLocalLookup). Store errors propagate (the session answers 451 4.3.0); never writes.
 */
import type { RecipientQuery, RecipientVerdict } from '../smtp/services.js';
import type { Account, Clock, Store } from '../store/index.js';
import { systemClock } from '../store/api.js';
import { splitAddress } from './address.js';
import type { LocalDomains } from './domains.js';
import { cachedLocalLookup, DEFAULT_LOOKUP_CACHE_MS, type LocalLookup } from './lookup.js';
import { virtualRecipientVerdict, type VirtualAliasOptions } from '../routing/virtual.js';

export interface RecipientPolicyOptions {
  store: Store;
  domains: LocalDomains;
  /** recipient_delimiter characters; '' disables subaddressing */
  delimiters: string;
  /** virtual_alias_maps: an address with an entry there is ours to accept (or to refuse with its error:) */
  virtual?: VirtualAliasOptions | null;
  /**
   * How long a found account or alias is reused for the same address (default 1000 ms; 0: ask the
   * store every time). Only hits are kept: a new account is accepted at once, a removed one may still
   * be accepted for this long (its delivery then fails and bounces, as with any race against removal).
   */
  lookupCacheMs?: number;
  clock?: Clock;
  /** the lookup to use, shared with the commit's expansion (serve-mail.ts); default: its own cache */
  lookup?: LocalLookup;
}

export type RecipientPolicy = (query: RecipientQuery) => Promise<RecipientVerdict>;

const reject = (code: number, enhanced: string, text: string): RecipientVerdict => ({ action: 'reject', code, enhanced, text });

export const unknownUser = (rcpt: string): RecipientVerdict =>
  reject(550, '5.1.1', `<${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`);

async function quotaExceeded(store: Store, account: Account): Promise<boolean> {
  if (account.quotaBytes === null) return false;
  const quota = await store.messages.quota(account.id);
  return quota.limitBytes !== null && quota.bytes >= quota.limitBytes;
}

export function createRecipientPolicy(options: RecipientPolicyOptions): RecipientPolicy {
  const { store, domains, delimiters } = options;
  const lookup = options.lookup ?? cachedLocalLookup(store, delimiters, options.lookupCacheMs ?? DEFAULT_LOOKUP_CACHE_MS, options.clock ?? systemClock);
  return async ({ client, recipient }) => {
    const split = splitAddress(recipient);
    if (!split || split.local === '') {
      return reject(504, '5.5.2', `<${recipient}>: Recipient address rejected: need fully-qualified address`);
    }
    // Postfix checks virtual_alias_maps before the relay and local tables: an entry makes the address ours
    if (options.virtual) {
      const verdict = await virtualRecipientVerdict(recipient, options.virtual);
      if (verdict?.accept === true) return { action: 'accept', kind: 'local' };
      if (verdict) return reject(550, verdict.status, `<${recipient}>: Recipient address rejected: ${verdict.text}`);
    }
    if (domains.isRelay(split.domain)) return { action: 'accept', kind: 'relay' };
    if (await domains.isLocal(split.domain)) {
      const target = await lookup(split.local, split.domain);
      if (target.kind === 'unknown') return unknownUser(recipient);
      if (target.kind === 'account' && (await quotaExceeded(store, target.account))) {
        return reject(452, '4.2.2', `<${recipient}>: Mailbox full`);
      }
      return { action: 'accept', kind: 'local' };
    }
    if (client.trusted || client.authUser !== null) return { action: 'accept', kind: 'relay' };
    return reject(554, '5.7.1', `<${recipient}>: Relay access denied`);
  };
}
