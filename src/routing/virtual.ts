/*
 * Virtual alias maps with virtusertable semantics: one lookup step for an address (Postfix's order,
 * routing/maps.ts), its value parsed into targets or an `error:` failure. Targets may use sendmail's
 * templates (%1/%u local part, %2 extension, %3 delimiter+extension, %d domain, %% a percent sign),
 * Postfix's `@otherdomain` (same user, other domain) and propagation of an unmatched extension.
 * Recursion, loops and limits belong to queue/expand.ts. Value parsing is pure and never throws.
 */
import { lookupAddress, splitExtension, withExtension, type LookupMap, type MatchForm } from './maps.js';

export type VirtualValue = { kind: 'targets'; targets: string[] } | { kind: 'error'; reason: string };

export type VirtualStep =
  | { kind: 'targets'; targets: string[]; key: string; form: MatchForm }
  | { kind: 'error'; reason: string; key: string; form: MatchForm };

export interface VirtualAliasOptions {
  maps: LookupMap;
  delimiters: string;
  /** domains whose bare `user` keys apply (Postfix: $myorigin, $mydestination) */
  isLocal: (domain: string) => boolean | Promise<boolean>;
  /** appended to an unqualified target such as "root" (Postfix's $myorigin) */
  myorigin: string;
  /** propagate_unmatched_extensions contains "virtual" */
  propagateExtension: boolean;
  /** virtual_alias_domains (lowercase): an address there with no table entry is an unknown user */
  aliasDomains?: ReadonlySet<string>;
}

/** At most this many targets in one value: a runaway table line cannot fan out without bound. */
export const MAX_TARGETS_PER_VALUE = 1000;

/** Splits a virtual(5) value: addresses separated by commas and/or whitespace; `error:` stands alone. */
export function parseVirtualValue(value: string): VirtualValue | { kind: 'invalid'; problem: string } {
  const v = value.trim();
  if (/^error:/i.test(v)) {
    const m = /^error:\s*(5)\.(\d{1,3})\.(\d{1,3})(?:\s+([\s\S]*))?$/i.exec(v);
    if (!m) return { kind: 'invalid', problem: `"${v}": an error target looks like "error:5.1.1 text" (a 5.X.X status)` };
    const status = `5.${m[2]}.${m[3]}`;
    return { kind: 'error', reason: `${status} ${(m[4] ?? '').trim() || 'rejected by the virtual alias table'}` };
  }
  const targets = v.split(/[\s,]+/).filter((t) => t !== '');
  if (targets.length === 0) return { kind: 'invalid', problem: 'empty target list' };
  if (targets.length > MAX_TARGETS_PER_VALUE) return { kind: 'invalid', problem: `more than ${MAX_TARGETS_PER_VALUE} targets` };
  for (const t of targets) {
    const bad = templateProblem(t);
    if (bad) return { kind: 'invalid', problem: bad };
  }
  return { kind: 'targets', targets };
}

/** For a table's ValueCheck: the problem with a virtual alias value, or null. */
export function virtualValueProblem(value: string): string | null {
  const parsed = parseVirtualValue(value);
  return parsed.kind === 'invalid' ? parsed.problem : null;
}

function templateProblem(target: string): string | null {
  const bad = /%(?:[1-3ud%])|%(.?)/g;
  for (let m = bad.exec(target); m; m = bad.exec(target)) {
    if (m[1] !== undefined) return `"${target}": unknown template "%${m[1]}" (use %1 or %u, %2, %3, %d, %%)`;
  }
  if (/[\0\r\n<>"]/.test(target)) return `"${target}": not an address`;
  return null;
}

export interface TemplateParts {
  /** the local part without its extension */
  user: string;
  /** the extension without its delimiter, "" when none */
  extension: string;
  /** the delimiter and extension, "" when none */
  delimited: string;
  domain: string;
}

/** Expands %1 %u %2 %3 %d %% in one target. Pure. */
export function expandTemplate(target: string, p: TemplateParts): string {
  return target.replace(/%([1-3ud%])/g, (_, c: string) => {
    switch (c) {
      case '1':
      case 'u':
        return p.user;
      case '2':
        return p.extension;
      case '3':
        return p.delimited;
      case 'd':
        return p.domain;
      default:
        return '%';
    }
  });
}

/**
 * For the RCPT-time policy: what the tables say about a recipient before any queueing — null (no
 * entry: ask the directory), accept (an entry with targets), or reject with the `error:` status.
 */
export async function virtualRecipientVerdict(address: string, o: VirtualAliasOptions): Promise<null | { accept: true } | { accept: false; status: string; text: string }> {
  const step = await virtualStep(address, o);
  if (!step) return null;
  if (step.kind === 'targets') return { accept: true };
  const m = /^(\d\.\d+\.\d+) ([\s\S]*)$/.exec(step.reason);
  return { accept: false, status: m?.[1] ?? '5.1.1', text: m?.[2] ?? step.reason };
}

/**
 * One virtual alias step for `address`: null when no table entry applies. A value that no longer
 * parses (an inline table is checked at open, a file at each load) is a failure of this address.
 */
export async function virtualStep(address: string, o: VirtualAliasOptions): Promise<VirtualStep | null> {
  const match = await lookupAddress(o.maps, address, { delimiters: o.delimiters, userForm: o.isLocal });
  if (!match) {
    const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
    if (!o.aliasDomains?.has(domain)) return null;
    return { kind: 'error', reason: '5.1.1 user unknown in virtual alias table', key: `@${domain}`, form: 'domain' };
  }
  const parsed = parseVirtualValue(match.value);
  const { key, form } = match;
  if (parsed.kind === 'invalid') return { kind: 'error', reason: `5.3.5 bad virtual alias table entry for ${key}: ${parsed.problem}`, key, form };
  if (parsed.kind === 'error') return { kind: 'error', reason: parsed.reason, key, form };
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  const ext = splitExtension(local, o.delimiters);
  const parts: TemplateParts = {
    user: ext ? ext[0] : local,
    extension: ext ? ext[1].slice(1) : '',
    delimited: ext ? ext[1] : '',
    domain,
  };
  const propagate = o.propagateExtension ? match.extension : null;
  const targets = parsed.targets.map((raw) => {
    const t = expandTemplate(raw, parts);
    // Postfix: "@otherdomain" is the same user (the whole local part) in otherdomain.
    if (t.startsWith('@')) return `${local}${t}`;
    const qualified = t.includes('@') ? t : `${t}@${o.myorigin}`;
    return withExtension(qualified, propagate);
  });
  return { kind: 'targets', targets, key, form };
}
