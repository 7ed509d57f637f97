/*
 * Virtual alias expansion at commit time, once per message: every envelope recipient goes first through
 * the configured virtual_alias_maps (routing/virtual.ts: any domain, virtusertable templates, `error:`
 * targets), then, for a local domain, through the directory (aliases, subaddresses, catch-all) to its
 * final addresses; remote targets stay as they are for the routing stage. Loops, excess depth, unknown
 * users and bad targets never fail the commit: they become final recipients carrying a failure reason.
 * Finals are deduplicated. Store and table errors propagate (the session answers 451, nothing queued).
 */
import type { EnvelopeRecipient } from '../smtp/services.js';
import type { QueueRecipientInput, Store } from '../store/index.js';
import { isPlainLocalPart, localKey, recipientKey, splitAddress } from '../policy/address.js';
import type { LocalDomains } from '../policy/domains.js';
import { directLocalLookup, type LocalLookup } from '../policy/lookup.js';
import { virtualStep, type VirtualAliasOptions } from '../routing/virtual.js';
import type { ExpansionRecord } from './meta.js';

export interface ExpandOptions {
  store: Store;
  domains: LocalDomains;
  delimiters: string;
  /** alias levels followed before giving up (virtual_alias_recursion_limit) */
  recursionLimit: number;
  /** final addresses one original recipient may produce (virtual_alias_expansion_limit) */
  expansionLimit: number;
  /** virtual_alias_maps, searched before the directory; absent: the directory only */
  virtual?: VirtualAliasOptions | null;
  /** the directory step, shared with the RCPT check (policy/lookup.ts); absent: the store, uncached */
  lookup?: LocalLookup | null;
}

/** The options with the directory step settled (see withLookup). */
type Expanding = ExpandOptions & { lookup: LocalLookup };

/** Settles the directory step once (createCommit does it at start-up; a direct caller per call). */
export function withLookup<O extends ExpandOptions>(o: O): O & Expanding {
  return o.lookup ? (o as O & Expanding) : { ...o, lookup: directLocalLookup(o.store, o.delimiters) };
}

export interface Expansion extends ExpansionRecord {
  recipients: QueueRecipientInput[];
}

interface Final {
  address: string;
  failure: string | null;
}

/** The address as the directory stores it when it is plain, else as given (for messages and keys). */
function display(address: string): string {
  const split = splitAddress(address);
  return split && isPlainLocalPart(split.local) ? localKey(split.local, split.domain) : address;
}

function loopFailure(address: string, path: string[], again: string): Final {
  const loop = [...path, again].join(' -> ');
  return { address: display(address), failure: `554 5.4.6 <${address}>: mail forwarding loop (${loop})` };
}

function depthFailure(address: string, o: ExpandOptions): Final {
  return { address: display(address), failure: `554 5.4.6 <${address}>: alias expansion deeper than ${o.recursionLimit} levels` };
}

/**
 * The virtual_alias_maps step: true when the tables handled the address. A target equal to the address
 * itself (`a@x -> a@x, b@y`, Postfix's "keep a copy") is not looked up in the tables again but goes on
 * to the directory; any other address seen again on the path is a loop.
 */
async function visitVirtual(address: string, path: string[], out: Final[], o: Expanding, v: VirtualAliasOptions): Promise<boolean> {
  const step = await virtualStep(address, v);
  if (!step) return false;
  const key = display(address);
  if (path.includes(key)) {
    out.push(loopFailure(address, path, key));
    return true;
  }
  if (step.kind === 'error') {
    out.push({ address: key, failure: `550 ${step.reason.replace(/^(\d\.\d+\.\d+) /, `$1 <${address}>: `)}` });
    return true;
  }
  if (path.length >= o.recursionLimit) {
    out.push(depthFailure(address, o));
    return true;
  }
  for (const next of step.targets) {
    const self = next.toLowerCase() === address.toLowerCase();
    await visit(next.trim(), [...path, key], out, o, self);
  }
  return true;
}

async function visit(address: string, path: string[], out: Final[], o: Expanding, skipVirtual = false): Promise<void> {
  if (out.length > o.expansionLimit) return;
  const split = splitAddress(address);
  if (!split) {
    out.push({ address, failure: `553 5.1.3 <${address}>: bad address syntax in alias target` });
    return;
  }
  if (o.virtual && !skipVirtual && (await visitVirtual(address, path, out, o, o.virtual))) return;
  if (!(await o.domains.isLocal(split.domain))) {
    out.push({ address, failure: null });
    return;
  }
  const target = await o.lookup(split.local, split.domain);
  if (target.kind === 'account') {
    out.push({ address: target.account.address, failure: null });
  } else if (target.kind === 'unknown') {
    out.push({ address: display(address), failure: `550 5.1.1 <${address}>: user unknown in virtual mailbox table` });
  } else if (path.includes(target.alias.source)) {
    out.push(loopFailure(address, path, target.alias.source));
  } else if (path.length >= o.recursionLimit) {
    out.push(depthFailure(address, o));
  } else {
    for (const next of target.alias.targets) await visit(next.trim(), [...path, target.alias.source], out, o);
  }
}

async function expandOne(rcpt: EnvelopeRecipient, o: Expanding): Promise<Final[]> {
  const out: Final[] = [];
  await visit(rcpt.address, [], out, o);
  if (out.length <= o.expansionLimit) return out;
  const failure = `554 5.4.6 <${rcpt.address}>: alias expansion produced more than ${o.expansionLimit} addresses`;
  return [{ address: display(rcpt.address), failure }];
}

export async function expandRecipients(recipients: readonly EnvelopeRecipient[], options: ExpandOptions): Promise<Expansion> {
  const o = withLookup(options);
  const result: Expansion = { recipients: [], expanded: {}, undeliverable: {} };
  const seen = new Set<string>();
  for (const rcpt of recipients) {
    const finals = await expandOne(rcpt, o);
    const same = finals.length === 1 && finals[0]?.address.toLowerCase() === rcpt.address.toLowerCase();
    if (!same) result.expanded[rcpt.address] = finals.map((f) => f.address);
    for (const f of finals) {
      const key = recipientKey(f.address);
      if (seen.has(key)) continue;
      seen.add(key);
      const rewritten = f.address.toLowerCase() !== rcpt.address.toLowerCase();
      // RFC 3461: keep what the client asked for; when it gave nothing, remember the address before rewriting.
      const orcpt = rcpt.orcpt ?? (rewritten ? `rfc822;${rcpt.address}` : null);
      result.recipients.push({ address: f.address, orcpt, notify: rcpt.notify ?? null });
      if (f.failure !== null) result.undeliverable[f.address] = f.failure;
    }
  }
  return result;
}
