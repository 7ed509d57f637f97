/*
 * Parses the multi-host PostgreSQL URLs of libpq (`postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write`),
 * which node-postgres does not understand, into a host list plus a single-host URL pg can take.
 * Pure: text in, a value or a StoreError `invalid` out. Supports the netloc form only (not host= params
 * or socket paths, which single-host URLs still pass through to pg unchanged).
 */
import { StoreError } from '../../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/** What to accept of a server (libpq's target_session_attrs; `primary` is read-write without the SHOW). */
export type SessionTarget = 'any' | 'read-write';

export interface ParsedUrl {
  hosts: HostPort[];
  target: SessionTarget;
  /** everything before the host list (scheme and user info) */
  prefix: string;
  /** everything after it (database and parameters, without target_session_attrs) */
  suffix: string;
}

/** The single-host URL pg can parse, for one of the hosts. */
export function urlFor(parsed: ParsedUrl, host: HostPort): string {
  return `${parsed.prefix}${formatHost(host)}${parsed.suffix}`;
}

export function describeHost(h: HostPort): string {
  return formatHost(h);
}

const DEFAULT_PORT = 5432;
const MAX_HOSTS = 16;
const TARGETS: Record<string, SessionTarget> = { any: 'any', 'read-write': 'read-write', primary: 'read-write' };

function parsePort(text: string, whole: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new StoreError('invalid', `postgres url: bad port "${text}" in "${whole}"`);
  return port;
}

function parseHost(item: string): HostPort {
  if (item.startsWith('[')) {
    const end = item.indexOf(']');
    if (end < 0) throw new StoreError('invalid', `postgres url: unclosed "[" in host "${item}"`);
    const host = item.slice(1, end);
    const rest = item.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new StoreError('invalid', `postgres url: bad host "${item}"`);
    return { host, port: rest === '' ? DEFAULT_PORT : parsePort(rest.slice(1), item) };
  }
  const colon = item.lastIndexOf(':');
  const host = colon < 0 ? item : item.slice(0, colon);
  if (host === '' || /[\s/?#@]/.test(host)) throw new StoreError('invalid', `postgres url: bad host "${item}"`);
  return { host, port: colon < 0 ? DEFAULT_PORT : parsePort(item.slice(colon + 1), item) };
}

function formatHost(h: HostPort): string {
  return `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
}

/**
 * Returns null for a URL this module need not handle (one host and no target_session_attrs, or a form
 * it does not parse such as a socket path): pg gets it as it is.
 */
export function parseMultiHostUrl(url: string): ParsedUrl | null {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return null;
  const [, scheme = '', authority = '', tail = ''] = m;
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1);
  const hostPart = at < 0 ? authority : authority.slice(at + 1);

  const q = tail.indexOf('?');
  const path = q < 0 ? tail : tail.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : tail.slice(q + 1).replace(/#.*$/s, ''));
  const attrs = params.get('target_session_attrs');
  if (!hostPart.includes(',') && attrs === null) return null;

  let target: SessionTarget = 'any';
  if (attrs !== null) {
    const t = TARGETS[attrs];
    if (!t) throw new StoreError('invalid', `postgres url: target_session_attrs "${attrs}" is not supported (use any, read-write or primary)`);
    target = t;
    params.delete('target_session_attrs');
  }
  if (hostPart === '') throw new StoreError('invalid', 'postgres url: target_session_attrs needs a host list');
  const items = hostPart.split(',');
  if (items.length > MAX_HOSTS) throw new StoreError('invalid', `postgres url: more than ${MAX_HOSTS} hosts`);
  const hosts = items.map(parseHost);
  const query = params.toString();
  return { hosts, target, prefix: `${scheme}${userinfo}`, suffix: `${path}${query ? `?${query}` : ''}` };
}
