/*
 * The MX rules of DESIGN.md §4 as pure functions: from a destination string and DNS answers to the
 * ordered list of (host, address, port) to try. Kept free of I/O so every rule — NXDOMAIN, implicit MX,
 * null MX, equal-preference shuffling, backup-MX pruning, the "loops back to myself" defer — is tested
 * on its own with an injected random source. Failures carry Postfix's wording for logs and bounces.
 */
import { isIP } from 'node:net';
import { describeFailure, normalizeName, type DnsResult, type MxRecord } from '../../dns/types.js';

export type Destination =
  /** look up MX records of `domain` */
  | { kind: 'mx'; domain: string; port: number }
  /** `[host]:port`: no MX lookup; `host` is a name to resolve or an IP address */
  | { kind: 'host'; host: string; port: number }
  /** `lmtp:[host]:port` or `lmtp:host:port`: LMTP (RFC 2033), A/AAAA lookup only, never MX */
  | { kind: 'lmtp'; host: string; port: number }
  /** `lmtp:unix:/path`: LMTP over a Unix domain socket */
  | { kind: 'lmtp-unix'; path: string };

export type Failure = { kind: 'permanent' | 'temporary'; reason: string };

export interface Target {
  host: string;
  address: string;
  port: number;
  preference: number;
  /** a Unix domain socket to connect to instead of address:port (`lmtp:unix:/path`) */
  path?: string;
}

export interface SelfIdentity {
  /** our host names (lower case) */
  names: readonly string[];
  /** our addresses, as the MX's A/AAAA records would show them */
  addresses: readonly string[];
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

/** sun_path holds 108 octets on Linux, the terminating NUL included */
export const UNIX_PATH_LIMIT = 107;

/**
 * Parses a transport destination: `smtp:example.org`, `smtp:example.org:2525` (MX lookup),
 * `smtp:[mx.example.org]:2525`, `smtp:[127.0.0.5]:2525`, `smtp:[::1]:25` (no MX lookup); the `smtp:`
 * prefix is optional (relayhost values). LMTP: `lmtp:[host]:port`, `lmtp:host:port` (both without MX
 * lookup, `lmtpPort` when no port is given), `lmtp:inet:…` (Postfix's spelling) and `lmtp:unix:/path`.
 * Returns a reason string for anything else.
 */
export function parseDestination(text: string, defaultPort: number, lmtpPort = 24): Destination | { kind: 'invalid'; reason: string } {
  if (/^\s*lmtp:/i.test(text)) return parseLmtpDestination(text, lmtpPort);
  const bad = (why: string) => ({ kind: 'invalid' as const, reason: `bad SMTP destination "${text.slice(0, 100)}": ${why}` });
  let s = text.trim();
  if (/^smtp:/i.test(s)) s = s.slice(5);
  let port = defaultPort;
  const portOf = (p: string | undefined): number | null => {
    if (p === undefined) return defaultPort;
    if (!/^\d{1,5}$/.test(p)) return null;
    const n = Number(p);
    return n >= 1 && n <= 65535 ? n : null;
  };
  const bracket = /^\[([^\]]*)\](?::([^:]*))?$/.exec(s);
  if (bracket) {
    let host = (bracket[1] ?? '').toLowerCase();
    if (host.startsWith('ipv6:')) host = host.slice(5);
    const p = portOf(bracket[2]);
    if (p === null) return bad('port');
    port = p;
    if (isIP(host) !== 0) return { kind: 'host', host, port };
    host = normalizeName(host);
    if (!HOSTNAME.test(host)) return bad('host name');
    return { kind: 'host', host, port };
  }
  const m = /^([^:[\]]+)(?::([^:]*))?$/.exec(s);
  if (!m) return bad('syntax');
  const p = portOf(m[2]);
  if (p === null) return bad('port');
  const domain = normalizeName(m[1] ?? '');
  if (!HOSTNAME.test(domain)) return bad('domain name');
  return { kind: 'mx', domain, port: p };
}

function parseLmtpDestination(text: string, lmtpPort: number): Destination | { kind: 'invalid'; reason: string } {
  const bad = (why: string) => ({ kind: 'invalid' as const, reason: `bad LMTP destination "${text.slice(0, 100).replace(/[\x00-\x1f\x7f]/g, '?')}": ${why}` });
  let s = text.trim().slice(5);
  if (/^unix:/i.test(s)) {
    const path = s.slice(5);
    if (!path.startsWith('/')) return bad('the socket path must be absolute');
    if (/[\x00-\x1f\x7f]/.test(path)) return bad('control characters in the socket path');
    if (Buffer.byteLength(path) > UNIX_PATH_LIMIT) return bad(`socket path longer than ${UNIX_PATH_LIMIT} octets`);
    return { kind: 'lmtp-unix', path };
  }
  if (/^inet:/i.test(s)) s = s.slice(5);
  if (s === '') return bad('no host');
  if (/^(?:smtp|lmtp):/i.test(s)) return bad('syntax');
  // the SMTP syntax, minus MX: `host:port` and `[host]:port` both mean "this host"
  const d = parseDestination(s, lmtpPort);
  if (d.kind === 'invalid') return bad(d.reason.slice(d.reason.lastIndexOf(': ') + 2));
  if (d.kind === 'host') return { kind: 'lmtp', host: d.host, port: d.port };
  if (d.kind === 'mx') return { kind: 'lmtp', host: d.domain, port: d.port };
  return bad('syntax');
}

/** Orders by preference and shuffles each group of equal preference (Fisher–Yates with `random`). */
export function orderByPreference<T extends { preference: number }>(items: readonly T[], random: () => number): T[] {
  const sorted = [...items].sort((a, b) => a.preference - b.preference);
  const out: T[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.preference === sorted[i]!.preference) j++;
    const group = sorted.slice(i, j);
    for (let k = group.length - 1; k > 0; k--) {
      const r = Math.min(k, Math.floor(random() * (k + 1)));
      [group[k], group[r]] = [group[r]!, group[k]!];
    }
    out.push(...group);
    i = j;
  }
  return out;
}

export interface MxHost {
  name: string;
  preference: number;
}

export type MxStep = { kind: 'hosts'; hosts: MxHost[]; implicit: boolean } | Failure;

/** Step 1: the MX answer for `domain` → hosts in trying order, or a failure for every recipient. */
export function mxHosts(domain: string, answer: DnsResult<MxRecord>, random: () => number): MxStep {
  switch (answer.kind) {
    case 'nxdomain':
      return { kind: 'permanent', reason: describeFailure(domain, 'MX', answer) };
    case 'temporary':
      return { kind: 'temporary', reason: describeFailure(domain, 'MX', answer) };
    case 'nodata':
      return { kind: 'hosts', hosts: [{ name: domain, preference: 0 }], implicit: true };
    case 'ok': {
      // RFC 7505: a single "0 ." record says the domain takes no mail; a stray "." among real MXs is ignored.
      if (answer.records.length === 1 && answer.records[0]!.exchange === '') {
        return { kind: 'permanent', reason: `Domain ${domain} does not accept mail (nullMX)` };
      }
      const real = answer.records.filter((r) => r.exchange !== '');
      if (real.length === 0) return { kind: 'permanent', reason: `Domain ${domain} does not accept mail (nullMX)` };
      const hosts = orderByPreference(real.map((r) => ({ name: r.exchange, preference: r.preference })), random);
      return { kind: 'hosts', hosts, implicit: false };
    }
  }
}

export interface ResolvedHost extends MxHost {
  a: DnsResult<string>;
  aaaa: DnsResult<string>;
}

function addressesOf(h: ResolvedHost): string[] {
  return [...(h.a.kind === 'ok' ? h.a.records : []), ...(h.aaaa.kind === 'ok' ? h.aaaa.records : [])];
}

function isSelf(h: ResolvedHost, self: SelfIdentity): boolean {
  if (self.names.some((n) => normalizeName(n) === h.name)) return true;
  return addressesOf(h).some((a) => self.addresses.includes(a));
}

/**
 * Step 2: hosts (in trying order) with their address lookups → every address of every host, after
 * dropping MXs at or above our own preference. `self` null skips the loop check (`[host]` destinations).
 * With `random`, the addresses of equal preference are shuffled together, as Postfix's
 * smtp_randomize_addresses (default yes) does: a pool behind one name with several A records (a relay
 * pool, T3) gets its clients' connections spread over its members instead of all on the first address
 * the DNS server lists.
 */
export function deliveryTargets(
  domain: string,
  hosts: readonly ResolvedHost[],
  port: number,
  self: SelfIdentity | null,
  random?: () => number,
): { kind: 'targets'; targets: Target[] } | Failure {
  let usable = [...hosts];
  if (self) {
    const mine = usable.filter((h) => isSelf(h, self));
    if (mine.length > 0) {
      const ours = Math.min(...mine.map((h) => h.preference));
      usable = usable.filter((h) => h.preference < ours);
      if (usable.length === 0) return { kind: 'temporary', reason: `mail for ${domain} loops back to myself` };
    }
  }
  const targets: Target[] = [];
  let lastFailure: string | null = null;
  let temporary = false;
  for (const h of usable) {
    const addrs = addressesOf(h);
    if (addrs.length === 0) {
      const aaaaWorse = h.a.kind !== 'temporary' && h.aaaa.kind === 'temporary';
      const failed = aaaaWorse ? h.aaaa : h.a;
      if (failed.kind === 'temporary') temporary = true;
      lastFailure = describeFailure(h.name, aaaaWorse ? 'AAAA' : 'A', failed);
      continue;
    }
    for (const address of addrs) targets.push({ host: h.name, address, port, preference: h.preference });
  }
  if (targets.length > 0) return { kind: 'targets', targets: random ? orderByPreference(targets, random) : targets };
  return { kind: temporary ? 'temporary' : 'permanent', reason: lastFailure ?? `no usable host for ${domain}` };
}

/** A `[1.2.3.4]:port` destination needs no DNS at all. */
export function literalTarget(dest: Destination): Target | null {
  if (dest.kind === 'lmtp-unix') return { host: 'localhost', address: dest.path, port: 0, preference: 0, path: dest.path };
  if (dest.kind !== 'host' && dest.kind !== 'lmtp') return null;
  return isIP(dest.host) !== 0 ? { host: dest.host, address: dest.host, port: dest.port, preference: 0 } : null;
}

/** Postfix's relay= form: `mx1.example.org[127.0.0.5]:25`; a Unix socket: `localhost[/run/cartero/lmtp]`. */
export function relayName(t: Pick<Target, 'host' | 'address' | 'port' | 'path'>): string {
  return t.path !== undefined ? `${t.host}[${t.path}]` : `${t.host}[${t.address}]:${t.port}`;
}
