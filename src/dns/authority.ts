/*
 * A small authoritative DNS server (UDP and TCP on one loopback port) serving zones given as data.
 * It exists so tests and `cartero lab` can run real MX scenarios (null MX, implicit MX, equal
 * preferences, backup MX) against our real resolver instead of a patched one. Answers follow RFC
 * 1034/2308: NXDOMAIN for names it does not hold, NOERROR with no answer (NODATA) for a type a name
 * lacks, both with the SOA in the authority section; UDP answers over 512 octets are truncated (TC)
 * so clients retry over TCP. Per-name faults (servfail, refused, drop, garbage) let tests play a
 * broken server.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import type { Logger } from '../log/logger.js';
import { normalizeName, type MxRecord } from './types.js';

export interface ZoneRecords {
  MX?: MxRecord[];
  A?: string[];
  AAAA?: string[];
  TXT?: string[];
  PTR?: string[];
  /** an alias: the answer gives the CNAME and the target's records when this server holds them */
  CNAME?: string;
  /** answer TTL in seconds; default 300 */
  ttl?: number;
}

export type Zone = Record<string, ZoneRecords>;

export type Fault = 'servfail' | 'refused' | 'drop' | 'garbage';

export interface AuthorityOptions {
  zone: Zone;
  /** per-name misbehaviour for tests */
  faults?: Record<string, Fault>;
  address?: string;
  /** 0 picks a free port (the same for UDP and TCP) */
  port?: number;
  /** SOA MINIMUM/TTL for negative answers, seconds; default 60 */
  negativeTtl?: number;
  logger?: Logger;
}

export interface AuthorityServer {
  address: string;
  port: number;
  /** "address:port" for the resolver's `servers` */
  server: string;
  /** queries answered, for tests that check caching */
  readonly queries: { name: string; type: string; tcp: boolean }[];
  setZone(zone: Zone): void;
  setFaults(faults: Record<string, Fault>): void;
  close(): Promise<void>;
}

const UDP_LIMIT = 512;
const MAX_TCP_QUERY = 4096;

/** The answer packet for one query (pure). Null means "send nothing". */
export function answerQuery(query: packet.DecodedPacket, zone: Zone, faults: Record<string, Fault>, negativeTtl: number): Buffer | null {
  const q = query.questions?.[0];
  const base = { type: 'response' as const, id: query.id ?? 0, questions: query.questions ?? [] };
  if (!q || query.type !== 'query') return packet.encode({ ...base, flags: 1 /* FORMERR */ });
  const name = normalizeName(q.name);
  const fault = faults[name];
  if (fault === 'drop') return null;
  if (fault === 'garbage') return Buffer.from('\x00\x01garbage, not DNS');
  if (fault === 'servfail') return packet.encode({ ...base, flags: 2 });
  if (fault === 'refused') return packet.encode({ ...base, flags: 5 });
  const tld = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : name;
  const soa: packet.Answer = {
    type: 'SOA',
    name: tld,
    ttl: negativeTtl,
    data: { mname: `ns.${tld}`, rname: `hostmaster.${tld}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: negativeTtl },
  };
  const answers: packet.Answer[] = [];
  let owner = name;
  let records = zone[owner];
  for (let hops = 0; records?.CNAME && q.type !== 'CNAME' && hops < 8; hops++) {
    answers.push({ type: 'CNAME', name: owner, ttl: records.ttl ?? 300, data: records.CNAME });
    owner = normalizeName(records.CNAME);
    records = zone[owner];
  }
  if (!records) {
    const flags = packet.AUTHORITATIVE_ANSWER | (answers.length > 0 ? 0 : 3);
    return packet.encode({ ...base, flags, answers, authorities: answers.length > 0 ? [] : [soa] });
  }
  const ttl = records.ttl ?? 300;
  switch (q.type) {
    case 'MX':
      for (const mx of records.MX ?? []) answers.push({ type: 'MX', name: owner, ttl, data: { preference: mx.preference, exchange: mx.exchange } });
      break;
    case 'A':
    case 'AAAA':
    case 'PTR':
      for (const v of records[q.type] ?? []) answers.push({ type: q.type, name: owner, ttl, data: v });
      break;
    case 'TXT':
      for (const v of records.TXT ?? []) answers.push({ type: 'TXT', name: owner, ttl, data: v });
      break;
    default:
      break;
  }
  const hasData = answers.some((a) => a.type === q.type);
  return packet.encode({ ...base, flags: packet.AUTHORITATIVE_ANSWER, answers, authorities: hasData ? [] : [soa] });
}

/** Truncates an answer for UDP: header and question only, TC set. */
function truncated(query: packet.DecodedPacket): Buffer {
  return packet.encode({ type: 'response', id: query.id ?? 0, flags: packet.AUTHORITATIVE_ANSWER | packet.TRUNCATED_RESPONSE, questions: query.questions ?? [] });
}

function bindUdp(address: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function listenTcp(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startAuthority(options: AuthorityOptions): Promise<AuthorityServer> {
  const address = options.address ?? '127.0.0.1';
  const negativeTtl = options.negativeTtl ?? 60;
  let zone: Zone = normalizeZone(options.zone);
  let faults: Record<string, Fault> = normalizeKeys(options.faults ?? {});
  const queries: { name: string; type: string; tcp: boolean }[] = [];
  const log = options.logger;

  const respond = (msg: Buffer, tcp: boolean): Buffer | null => {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(msg);
    } catch {
      log?.debug({ status: 'dns_bad_query' }, 'malformed DNS query ignored');
      return null;
    }
    const q = query.questions?.[0];
    queries.push({ name: normalizeName(q?.name ?? ''), type: q?.type ?? '', tcp });
    const out = answerQuery(query, zone, faults, negativeTtl);
    if (out && !tcp && out.length > UDP_LIMIT) return truncated(query);
    return out;
  };

  const sockets = new Set<Socket>();
  const tcpServer = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const size = buf.readUInt16BE(0);
        if (size > MAX_TCP_QUERY) return void sock.destroy();
        if (buf.length < size + 2) break;
        const out = respond(buf.subarray(2, size + 2), true);
        buf = buf.subarray(size + 2);
        if (out) {
          const framed = Buffer.alloc(out.length + 2);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          sock.write(framed);
        }
      }
    });
  });

  // UDP first on the requested port, then TCP on the same number; a taken TCP port means another try.
  let udp: UdpSocket | null = null;
  for (let attempt = 0; attempt < 20 && !udp; attempt++) {
    const s = await bindUdp(address, options.port ?? 0);
    try {
      await listenTcp(tcpServer, address, s.address().port);
      udp = s;
    } catch (err) {
      s.close();
      if (options.port) throw err;
    }
  }
  if (!udp) throw new Error(`cannot bind DNS UDP and TCP on one port at ${address}`);
  const udpSocket = udp;
  udpSocket.on('message', (msg, rinfo) => {
    const out = respond(msg, false);
    if (out) udpSocket.send(out, rinfo.port, rinfo.address);
  });
  const port = udpSocket.address().port;
  return {
    address,
    port,
    server: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`,
    queries,
    setZone(z) {
      zone = normalizeZone(z);
    },
    setFaults(f) {
      faults = normalizeKeys(f);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => {
        udpSocket.close(() => tcpServer.close(() => resolve()));
      });
    },
  };
}

function normalizeKeys<T>(rec: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(rec)) out[normalizeName(k)] = v;
  return out;
}

function normalizeZone(zone: Zone): Zone {
  return normalizeKeys(zone);
}
