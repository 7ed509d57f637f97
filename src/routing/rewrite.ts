/*
 * Address rewriting at queue commit, as Postfix's cleanup does it: canonical maps (sender_canonical or
 * recipient_canonical, then canonical) and masquerading (masquerade_domains with `!` exceptions,
 * masquerade_exceptions by user) on the envelope and on the address header fields. Header rewriting
 * replaces only the bytes of each changed addr-spec (routing/headers.ts). Table lookups are the only
 * I/O; a table failure propagates (the commit answers 451). Masquerading itself is pure.
 */
import { addressSpans, headerClass, headerFields, replaceSpans, type HeaderClass } from './headers.js';
import { lookupAddress, withExtension, type LookupMap } from './maps.js';
import type { MasqueradeClass } from './settings.js';

/** Postfix's cleanup_map11 gives up after this many chained canonical rewrites (a table loop). */
export const MAX_CANONICAL_CHAIN = 10;

export interface Masquerade {
  /** in order; a `!domain` entry stops masquerading for its subdomains */
  domains: readonly string[];
  /** local parts never masqueraded (lowercase compare) */
  exceptions: readonly string[];
}

/**
 * `user@host.sub.example.org` → `user@example.org` for the first masquerade_domains entry the domain is
 * a strict subdomain of; a `!entry` matched first leaves it alone. Pure.
 */
export function masquerade(address: string, m: Masquerade): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) return address;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  if (m.exceptions.some((e) => e.toLowerCase() === local.toLowerCase())) return address;
  for (const entry of m.domains) {
    const negated = entry.startsWith('!');
    const d = (negated ? entry.slice(1) : entry).toLowerCase();
    if (domain.length > d.length && domain.endsWith(`.${d}`)) return negated ? address : `${local}@${d}`;
  }
  return address;
}

export interface RewriterOptions {
  canonical: LookupMap | null;
  senderCanonical: LookupMap | null;
  recipientCanonical: LookupMap | null;
  masquerade: Masquerade | null;
  masqueradeClasses: readonly MasqueradeClass[];
  delimiters: string;
  /** domains whose bare `user` keys apply (Postfix: $myorigin, $mydestination) */
  isLocal: (domain: string) => boolean | Promise<boolean>;
  /** appended to an unqualified result such as "root" */
  myorigin: string;
  /** propagate_unmatched_extensions contains "canonical" */
  propagateExtension: boolean;
  /** told when a canonical chain is cut at MAX_CANONICAL_CHAIN */
  onLoop?: (address: string, map: string) => void;
}

export interface HeaderChange {
  field: string;
  from: string;
  to: string;
}

export interface HeaderRewrite {
  content: Buffer;
  changes: HeaderChange[];
}

export class AddressRewriter {
  constructor(private readonly o: RewriterOptions) {}

  /** Whether any rewriting is configured (commit skips the header scan when not). */
  get active(): boolean {
    const o = this.o;
    return o.canonical !== null || o.senderCanonical !== null || o.recipientCanonical !== null || (o.masquerade !== null && o.masquerade.domains.length > 0);
  }

  /** One table applied until it stops changing the address (Postfix's cleanup_map11). */
  private async mapOne(map: LookupMap, address: string): Promise<string> {
    let current = address;
    for (let i = 0; i < MAX_CANONICAL_CHAIN; i++) {
      const match = await lookupAddress(map, current, { delimiters: this.o.delimiters, userForm: this.o.isLocal });
      if (!match) return current;
      // One-to-one: a multi-address value uses its first address, as Postfix does (with a warning).
      const first = match.value.split(/[\s,]+/).find((t) => t !== '') ?? current;
      const at = current.lastIndexOf('@');
      let next: string;
      if (first.startsWith('@')) next = current.slice(0, at) + first;
      else next = withExtension(first.includes('@') ? first : `${first}@${this.o.myorigin}`, this.o.propagateExtension ? match.extension : null);
      if (next.toLowerCase() === current.toLowerCase()) return current;
      current = next;
    }
    this.o.onLoop?.(address, map.name);
    return current;
  }

  private async canonicalize(address: string, specific: LookupMap | null): Promise<string> {
    let a = address;
    if (specific) a = await this.mapOne(specific, a);
    if (this.o.canonical) a = await this.mapOne(this.o.canonical, a);
    return a;
  }

  private masq(address: string, cls: MasqueradeClass): string {
    return this.o.masquerade && this.o.masqueradeClasses.includes(cls) ? masquerade(address, this.o.masquerade) : address;
  }

  /** The envelope sender after sender_canonical, canonical and masquerading; "" stays "". */
  async rewriteSender(address: string): Promise<string> {
    if (address === '' || !address.includes('@')) return address;
    return this.masq(await this.canonicalize(address, this.o.senderCanonical), 'envelope_sender');
  }

  /** An envelope recipient after recipient_canonical, canonical and (if configured) masquerading. */
  async rewriteRecipient(address: string): Promise<string> {
    if (!address.includes('@')) return address;
    return this.masq(await this.canonicalize(address, this.o.recipientCanonical), 'envelope_recipient');
  }

  private async rewriteHeaderAddress(address: string, cls: HeaderClass): Promise<string> {
    if (cls === 'sender') return this.masq(await this.canonicalize(address, this.o.senderCanonical), 'header_sender');
    return this.masq(await this.canonicalize(address, this.o.recipientCanonical), 'header_recipient');
  }

  /**
   * Rewrites the addresses of the address header fields of the top-level header section. Only the
   * bytes of a changed addr-spec are replaced; unchanged content comes back as the same Buffer.
   */
  async rewriteHeaders(content: Buffer): Promise<HeaderRewrite> {
    const replacements: { start: number; end: number; text: string }[] = [];
    const changes: HeaderChange[] = [];
    const cache = new Map<string, string>();
    for (const field of headerFields(content)) {
      const cls = headerClass(field.name);
      if (!cls) continue;
      for (const span of addressSpans(content, field) ?? []) {
        const cacheKey = `${cls}\0${span.address}`;
        let to = cache.get(cacheKey);
        if (to === undefined) {
          to = await this.rewriteHeaderAddress(span.address, cls);
          cache.set(cacheKey, to);
        }
        if (to === span.address) continue;
        replacements.push({ start: span.start, end: span.end, text: to });
        changes.push({ field: field.name, from: span.address, to });
      }
    }
    return { content: replaceSpans(content, replacements), changes };
  }
}
