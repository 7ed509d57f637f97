/*
 * Transport selection (Postfix's trivial-rewrite with transport(5)): parses transport values such as
 * `lmtp:[host]:port` or `error:5.1.1 text` into a typed Transport (with transport(5)'s null fields: `:`
 * changes nothing, `:[host]` keeps the address class's transport with that nexthop, `smtp:` and `lmtp:`
 * go to the recipient domain), and chooses a recipient's transport:
 * transport_maps by address, domain, parent domains (`.example.org`), `*`; then local domains, relay
 * domains (relay_transport), relayhost, and finally the domain's MX. Parsing is pure and never throws
 * for bad input except through TransportSyntaxError; the router throws only on a table I/O failure.
 */
import type { LookupMap } from './maps.js';
import { splitExtension } from './maps.js';
import type { TlsPolicy } from './settings.js';

export interface SmtpNexthop {
  /** host name, or an IP address without brackets */
  host: string;
  /** null: the delivery agent's default (smtp_port / 24 for LMTP) */
  port: number | null;
  /** look up MX records for host (false for `[host]` and address literals) */
  mx: boolean;
}

export type Transport =
  | { kind: 'local' }
  | { kind: 'lmtp'; via: { type: 'inet'; host: string; port: number | null } | { type: 'unix'; path: string } }
  | {
      kind: 'smtp';
      /** which name selected it, for the log line's relay= */
      name: 'smtp' | 'relay';
      nexthop: SmtpNexthop;
      /** set for the relayhost: credentials for AUTH */
      auth?: { username: string; password: string };
      /** STARTTLS policy; absent: the delivery agent's default */
      tls?: TlsPolicy;
    }
  | { kind: 'error'; permanent: boolean; status: string; text: string }
  | { kind: 'discard'; text: string }
  | { kind: 'hold'; text: string };

/** A transport value as written in a table or the config, before the recipient fills in a missing nexthop. */
export type TransportSpec =
  | Exclude<Transport, { kind: 'smtp' } | { kind: 'lmtp' }>
  | { kind: 'smtp'; name: 'smtp' | 'relay'; nexthop: SmtpNexthop | null }
  /** via null: `lmtp:` with an empty nexthop, the recipient domain on the LMTP port */
  | { kind: 'lmtp'; via: { type: 'inet'; host: string; port: number | null } | { type: 'unix'; path: string } | null }
  /**
   * transport(5)'s null transport field: `:` (nexthop null) means "as if the table had no entry";
   * `:nexthop` / `:[nexthop]` keeps the transport of the address class (local, relay_transport, smtp)
   * and sends to this nexthop. Only a table value can say this.
   */
  | { kind: 'default'; nexthop: SmtpNexthop | null };

export class TransportSyntaxError extends Error {
  override readonly name = 'TransportSyntaxError';
}

const HOST = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/i;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f:.]+$/i;

function parsePort(text: string, value: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new TransportSyntaxError(`${JSON.stringify(value)}: port must be a number from 1 to 65535`);
  }
  return Number(text);
}

/** `host`, `host:port`, `[host]`, `[host]:port`, `[ipv6:2001:db8::1]`, `[2001:db8::1]:port`. */
export function parseNexthop(text: string, value: string): SmtpNexthop {
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracket) {
    let host = bracket[1] ?? '';
    if (/^ipv6:/i.test(host)) host = host.slice(5);
    const ok = HOST.test(host) || (IPV6.test(host) && host.includes(':')) || IPV4.test(host);
    if (!ok) throw new TransportSyntaxError(`${JSON.stringify(value)}: "${host}" is not a host name or IP address`);
    return { host: host.toLowerCase(), port: bracket[2] === undefined ? null : parsePort(bracket[2], value), mx: false };
  }
  const m = /^([^:[\]]+)(?::(.*))?$/.exec(text);
  if (!m || !HOST.test(m[1] ?? '')) throw new TransportSyntaxError(`${JSON.stringify(value)}: expected host, host:port, [host] or [host]:port`);
  const host = m[1]!.toLowerCase();
  // A bare IPv4 address needs no MX lookup (Postfix requires brackets; we do not make it look one up).
  return { host, port: m[2] === undefined ? null : parsePort(m[2], value), mx: !IPV4.test(host) };
}

function parseLmtp(rest: string, value: string): TransportSpec {
  // transport(5): a transport with a null nexthop "resets the nexthop information to the recipient domain"
  if (rest === '') return { kind: 'lmtp', via: null };
  if (/^unix:/i.test(rest)) {
    const path = rest.slice(5);
    if (!path.startsWith('/') || path.length < 2) throw new TransportSyntaxError(`${JSON.stringify(value)}: lmtp:unix: needs an absolute socket path`);
    return { kind: 'lmtp', via: { type: 'unix', path } };
  }
  const inet = /^inet:/i.test(rest) ? rest.slice(5) : rest;
  const hop = parseNexthop(inet, value);
  // LMTP never uses MX records (Postfix's lmtp client does not either).
  return { kind: 'lmtp', via: { type: 'inet', host: hop.host, port: hop.port } };
}

/** `error:5.1.1 text`, `error:4.3.0 text` (deferral), `error:text` (5.0.0). */
function parseError(rest: string, value: string): TransportSpec {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+([\s\S]*))?$/.exec(rest.trim());
  if (m) {
    if (m[1] === '2') throw new TransportSyntaxError(`${JSON.stringify(value)}: an error status must be 4.X.X or 5.X.X`);
    const status = `${m[1]}.${m[2]}.${m[3]}`;
    return { kind: 'error', permanent: m[1] === '5', status, text: (m[4] ?? '').trim() || 'delivery refused by the transport table' };
  }
  if (/^\d/.test(rest.trim())) throw new TransportSyntaxError(`${JSON.stringify(value)}: an error status looks like 5.1.1`);
  return { kind: 'error', permanent: true, status: '5.0.0', text: rest.trim() || 'delivery refused by the transport table' };
}

/** Parses one transport value (transport(5) syntax, plus `hold`). Pure; throws TransportSyntaxError. */
export function parseTransport(value: string): TransportSpec {
  const v = value.trim();
  if (/[\0\r\n]/.test(v)) throw new TransportSyntaxError(`${JSON.stringify(value)}: control characters are not allowed`);
  const colon = v.indexOf(':');
  const name = (colon < 0 ? v : v.slice(0, colon)).toLowerCase();
  const rest = colon < 0 ? '' : v.slice(colon + 1);
  if (colon === 0) {
    // `:` alone, or `:nexthop` / `:[nexthop]` (transport(5) RESULT FORMAT, null transport field)
    return { kind: 'default', nexthop: rest.trim() === '' ? null : parseNexthop(rest.trim(), value) };
  }
  switch (name) {
    case 'local':
      if (rest !== '') throw new TransportSyntaxError(`${JSON.stringify(value)}: local takes no destination`);
      return { kind: 'local' };
    case 'lmtp':
      return parseLmtp(rest, value);
    case 'smtp':
    case 'relay':
      return { kind: 'smtp', name, nexthop: rest === '' ? null : parseNexthop(rest, value) };
    case 'error':
      return parseError(rest, value);
    case 'discard':
      return { kind: 'discard', text: rest.trim() || 'discarded by the transport table' };
    case 'hold':
      return { kind: 'hold', text: rest.trim() || 'held by the transport table' };
    default:
      throw new TransportSyntaxError(
        `${JSON.stringify(value)}: unknown transport "${name}" (expected local, lmtp, smtp, relay, error, discard or hold)`,
      );
  }
}

/** For ValueCheck: the error message of a bad transport value, or null. */
export function transportProblem(value: string): string | null {
  try {
    parseTransport(value);
    return null;
  } catch (err) {
    return err instanceof TransportSyntaxError ? err.message : String(err);
  }
}

/**
 * For relay_transport: a transport value that names a transport. The null transport forms (`:`,
 * `:[host]`) mean "the default" and relay_transport is that default, so they are refused here.
 */
export function relayTransportProblem(value: string): string | null {
  const problem = transportProblem(value);
  if (problem) return problem;
  return parseTransport(value).kind === 'default' ? `${JSON.stringify(value)}: relay_transport needs a transport name (such as relay, smtp or lmtp)` : null;
}

/** The table keys for an address in transport(5) order; `.parent` keys match subdomains only. */
export function transportKeys(address: string, delimiters: string): string[] {
  const at = address.lastIndexOf('@');
  const keys: string[] = [];
  const domain = (at < 0 ? address : address.slice(at + 1)).toLowerCase();
  if (at > 0) {
    const local = address.slice(0, at).toLowerCase();
    keys.push(`${local}@${domain}`);
    const ext = splitExtension(local, delimiters);
    if (ext) keys.push(`${ext[0]}@${domain}`);
  }
  if (domain !== '') keys.push(domain);
  if (!domain.startsWith('[')) {
    const labels = domain.split('.');
    for (let i = 1; i < labels.length; i++) keys.push(`.${labels.slice(i).join('.')}`);
  }
  keys.push('*');
  return keys;
}

export interface RouterSettings {
  /** transport_maps (and the config's `transports`), searched as one chain; null: none */
  transportMaps: LookupMap | null;
  /** relay_transport for relay_domains; default "relay" (MX of the recipient domain) */
  relayTransport?: string;
  relayhost?: {
    host: string;
    port?: number | undefined;
    mx_lookup?: boolean;
    auth?: { username: string; password: string } | undefined;
    tls?: TlsPolicy;
  };
  /** recipient_delimiter characters, for the `user@domain` form of `user+ext@domain` */
  delimiters: string;
}

export interface RouterDeps {
  domains: { isLocal(domain: string): Promise<boolean>; isRelay(domain: string): boolean };
}

export type RouteFn = (address: string) => Promise<Transport>;

/** The MX nexthop for a recipient domain; address literals go to the address without MX lookup. */
function domainNexthop(domain: string): SmtpNexthop {
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain);
  return literal ? { host: literal[1]!.toLowerCase(), port: null, mx: false } : { host: domain, port: null, mx: true };
}

/**
 * Fills in what a table value left out: `smtp` alone goes to the recipient domain's MX, `lmtp:` to the
 * recipient domain (its address, no MX: LMTP never uses MX records).
 */
export function resolveSpec(spec: Exclude<TransportSpec, { kind: 'default' }>, domain: string): Transport {
  if (spec.kind === 'lmtp') {
    if (spec.via) return { kind: 'lmtp', via: spec.via };
    const hop = domainNexthop(domain);
    return { kind: 'lmtp', via: { type: 'inet', host: hop.host, port: null } };
  }
  if (spec.kind !== 'smtp') return spec;
  return { kind: 'smtp', name: spec.name, nexthop: spec.nexthop ?? domainNexthop(domain) };
}

/**
 * `:nexthop` for an address class whose transport is `spec`: the transport stays, the nexthop is the
 * table's. Transports without a nexthop (local, error, discard, hold, a unix-socket LMTP) stay as they are.
 */
function withNexthop(spec: Exclude<TransportSpec, { kind: 'default' }>, hop: SmtpNexthop, domain: string): Transport {
  if (spec.kind === 'smtp') return { kind: 'smtp', name: spec.name, nexthop: hop };
  if (spec.kind === 'lmtp' && spec.via?.type !== 'unix') return { kind: 'lmtp', via: { type: 'inet', host: hop.host, port: hop.port } };
  return resolveSpec(spec, domain);
}

/**
 * The router the scheduler asks for each recipient. Transport map values are checked when the table is
 * opened (transportProblem); one that still fails to parse here throws TransportSyntaxError, which the
 * scheduler turns into a deferral (a table error is never a bounce).
 */
export function createRouter(settings: RouterSettings, deps: RouterDeps): RouteFn {
  const parsedRelay = parseTransport(settings.relayTransport ?? 'relay');
  if (parsedRelay.kind === 'default') throw new TransportSyntaxError(relayTransportProblem(settings.relayTransport ?? '') ?? 'relay_transport needs a transport name');
  const relaySpec = parsedRelay;
  const rh = settings.relayhost;
  const relayhost: Transport | null = rh
    ? {
        kind: 'smtp',
        name: 'smtp',
        nexthop: { ...parseNexthop(rh.host, rh.host), port: rh.port ?? null, mx: rh.mx_lookup === true && !rh.host.startsWith('[') },
        ...(rh.auth ? { auth: { username: rh.auth.username, password: rh.auth.password } } : {}),
        tls: rh.tls ?? 'may',
      }
    : null;

  return async (address) => {
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1) {
      return { kind: 'error', permanent: true, status: '5.1.3', text: `bad address syntax: ${address}` };
    }
    const domain = address.slice(at + 1).toLowerCase();
    if (settings.transportMaps) {
      for (const key of transportKeys(address, settings.delimiters)) {
        const value = await settings.transportMaps.get(key);
        if (value === null) continue;
        const spec = parseTransport(value);
        if (spec.kind !== 'default') return resolveSpec(spec, domain);
        // `:[host]`: the address class's transport to this nexthop; `:` ends the search (the
        // more general keys such as `*` are not consulted) and the table is as if absent
        if (spec.nexthop) {
          if (await deps.domains.isLocal(domain)) return { kind: 'local' };
          if (deps.domains.isRelay(domain)) return withNexthop(relaySpec, spec.nexthop, domain);
          return { kind: 'smtp', name: 'smtp', nexthop: spec.nexthop };
        }
        break;
      }
    }
    if (await deps.domains.isLocal(domain)) return { kind: 'local' };
    if (deps.domains.isRelay(domain)) return resolveSpec(relaySpec, domain);
    if (relayhost) return relayhost;
    return { kind: 'smtp', name: 'smtp', nexthop: domainNexthop(domain) };
  };
}

/** One word for logs and `cartero map test`: "smtp:[mx.example]:2525", "lmtp:unix:/run/lmtp", "local". */
export function describeTransport(t: Transport | TransportSpec): string {
  switch (t.kind) {
    case 'local':
      return 'local';
    case 'lmtp':
      if (!t.via) return 'lmtp';
      return t.via.type === 'unix' ? `lmtp:unix:${t.via.path}` : `lmtp:${hostText(t.via.host, false)}${t.via.port ? `:${t.via.port}` : ''}`;
    case 'default':
      return t.nexthop ? `:${hostText(t.nexthop.host, t.nexthop.mx)}${t.nexthop.port ? `:${t.nexthop.port}` : ''}` : ':';
    case 'smtp':
      return t.nexthop ? `${t.name}:${hostText(t.nexthop.host, t.nexthop.mx)}${t.nexthop.port ? `:${t.nexthop.port}` : ''}` : t.name;
    case 'error':
      return `error:${t.status} ${t.text}`;
    case 'discard':
      return `discard:${t.text}`;
    case 'hold':
      return `hold:${t.text}`;
  }
}

function hostText(host: string, mx: boolean): string {
  return mx ? host : `[${host}]`;
}
