/*
 * What a DNS lookup tells the mail system, in the four cases delivery must tell apart: records, the
 * name does not exist (NXDOMAIN: permanent), the name exists without records of that type (NODATA: an
 * implicit MX for MX lookups), and "could not find out" (SERVFAIL, timeout, garbage: always temporary,
 * never a reason to bounce). Plain data shared by the resolver, the cache and the MX planner.
 */

export type QueryType = 'MX' | 'A' | 'AAAA' | 'TXT' | 'PTR';

export interface MxRecord {
  preference: number;
  /** lower case, no trailing dot; "" for the null MX target "." (RFC 7505) */
  exchange: string;
}

export interface RecordOf {
  MX: MxRecord;
  A: string;
  AAAA: string;
  TXT: string;
  PTR: string;
}

export type DnsResult<T> =
  | { kind: 'ok'; records: T[]; ttl: number }
  | { kind: 'nxdomain'; ttl: number }
  | { kind: 'nodata'; ttl: number }
  | { kind: 'temporary'; reason: string };

export interface Resolver {
  query<Q extends QueryType>(name: string, type: Q): Promise<DnsResult<RecordOf[Q]>>;
}

/** "example.org." / "Example.ORG" → "example.org"; "." → "". */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** Postfix-style text for the log line and the bounce, e.g. "Name service error for name=x type=MX: Host not found". */
export function describeFailure(name: string, type: QueryType, result: DnsResult<unknown>): string {
  switch (result.kind) {
    case 'nxdomain':
      return `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found`;
    case 'nodata':
      return `Host or domain name not found. Name service error for name=${name} type=${type}: Host found but no data record of requested type`;
    case 'temporary':
      return `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found, try again (${result.reason})`;
    case 'ok':
      return `name=${name} type=${type}: ok`;
  }
}
