/*
 * Reading one DNS response for one question (pure: a decoded packet in, a DnsResult out). Kept apart
 * from the sockets so every odd answer a server can give (wrong id, wrong question, CNAME chains,
 * records of the wrong type, a missing SOA) is unit-tested without a network. Negative TTLs follow
 * RFC 2308 §5: min(SOA TTL, SOA MINIMUM) from the authority section; no SOA means "do not cache" (0).
 */
import type { Answer, DecodedPacket } from 'dns-packet';
import { normalizeName, type DnsResult, type QueryType, type RecordOf } from './types.js';

export type Verdict<T> =
  | { kind: 'result'; result: DnsResult<T> }
  /** this server could not answer (SERVFAIL, REFUSED, FORMERR…): try the next one */
  | { kind: 'server_failure'; reason: string }
  /** not an answer to our question (spoofed or stale): keep waiting */
  | { kind: 'mismatch'; reason: string }
  | { kind: 'truncated' };

const CNAME_DEPTH = 8;

function rcodeOf(packet: DecodedPacket): string {
  const named = (packet as DecodedPacket & { rcode?: unknown }).rcode;
  return typeof named === 'string' ? named : 'NOERROR';
}

function negativeTtl(packet: DecodedPacket): number {
  for (const rr of packet.authorities ?? []) {
    if (rr.type === 'SOA') {
      const minimum = typeof rr.data.minimum === 'number' ? rr.data.minimum : 0;
      return Math.max(0, Math.min(rr.ttl ?? 0, minimum));
    }
  }
  return 0;
}

function dataOf<Q extends QueryType>(type: Q, rr: Answer): RecordOf[Q] | null {
  switch (type) {
    case 'MX':
      if (rr.type !== 'MX') return null;
      return { preference: rr.data.preference ?? 0, exchange: normalizeName(rr.data.exchange) } as RecordOf[Q];
    case 'A':
    case 'AAAA':
    case 'PTR':
      if (rr.type !== type || typeof rr.data !== 'string') return null;
      return (type === 'PTR' ? normalizeName(rr.data) : rr.data) as RecordOf[Q];
    case 'TXT': {
      if (rr.type !== 'TXT') return null;
      const parts = Array.isArray(rr.data) ? rr.data : [rr.data];
      return parts.map((p) => (typeof p === 'string' ? p : p.toString('utf8'))).join('') as RecordOf[Q];
    }
  }
  return null;
}

/** Interprets `packet` as the answer to (`id`, `name`, `type`). */
export function interpretResponse<Q extends QueryType>(packet: DecodedPacket, id: number, name: string, type: Q): Verdict<RecordOf[Q]> {
  if (packet.type !== 'response' || packet.id !== id) return { kind: 'mismatch', reason: 'wrong id or not a response' };
  const q = packet.questions?.[0];
  if (!q || normalizeName(q.name) !== normalizeName(name) || q.type !== type) return { kind: 'mismatch', reason: 'answer to another question' };
  if (packet.flag_tc) return { kind: 'truncated' };
  const rcode = rcodeOf(packet);
  if (rcode === 'NXDOMAIN') return { kind: 'result', result: { kind: 'nxdomain', ttl: negativeTtl(packet) } };
  if (rcode !== 'NOERROR') return { kind: 'server_failure', reason: rcode };

  // Follow the CNAME chain inside the answer section (a recursive server gives it whole).
  let owner = normalizeName(name);
  const answers = packet.answers ?? [];
  for (let depth = 0; depth < CNAME_DEPTH; depth++) {
    const cname = answers.find((rr) => rr.type === 'CNAME' && normalizeName(rr.name) === owner);
    if (!cname || cname.type !== 'CNAME' || typeof cname.data !== 'string') break;
    owner = normalizeName(cname.data);
  }
  const records: RecordOf[Q][] = [];
  let ttl = Infinity;
  for (const rr of answers) {
    if (normalizeName(rr.name) !== owner) continue;
    const data = dataOf(type, rr);
    if (data === null) continue;
    records.push(data);
    ttl = Math.min(ttl, 'ttl' in rr && typeof rr.ttl === 'number' ? rr.ttl : 0);
  }
  if (records.length === 0) return { kind: 'result', result: { kind: 'nodata', ttl: negativeTtl(packet) } };
  return { kind: 'result', result: { kind: 'ok', records, ttl } };
}
