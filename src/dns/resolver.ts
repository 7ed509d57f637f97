/*
 * Our stub resolver: asks the configured servers (or /etc/resolv.conf's) over UDP, retries over TCP
 * when the answer is truncated, moves to the next server on timeout or server failure, and caches what
 * it learns for the TTL the zone gives. Delivery needs exact answers (NXDOMAIN vs NODATA vs "try
 * again") and a configurable server/port for labs, which Node's resolver does not give. Never throws:
 * anything that goes wrong on the wire is a `temporary` result.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect as tcpConnect } from 'node:net';
import { isIPv6 } from 'node:net';
import * as packet from 'dns-packet';
import { systemClock, type ServerClock } from '../net/clock.js';
import { DnsCache, type DnsCacheOptions } from './cache.js';
import { parseServer, systemServers, type ServerAddress } from './resolv-conf.js';
import { interpretResponse, type Verdict } from './response.js';
import { normalizeName, type DnsResult, type QueryType, type RecordOf, type Resolver } from './types.js';

export interface ResolverOptions {
  /** "host[:port]" strings; default: /etc/resolv.conf */
  servers?: string[];
  /** per try and server, milliseconds; default 5000 */
  timeoutMs?: number;
  /** rounds over all servers after the first; default 2 */
  retries?: number;
  clock?: ServerClock;
  cache?: DnsCacheOptions | false;
}

const MAX_TCP_RESPONSE = 65_535;

type Attempt<T> = Verdict<T> | { kind: 'error'; reason: string };

export class StubResolver implements Resolver {
  readonly servers: ServerAddress[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly clock: ServerClock;
  private readonly cache: DnsCache | null;
  private readonly inflight = new Map<string, Promise<DnsResult<unknown>>>();

  constructor(options: ResolverOptions = {}) {
    this.servers = options.servers && options.servers.length > 0 ? options.servers.map(parseServer) : systemServers();
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = options.retries ?? 2;
    this.clock = options.clock ?? systemClock;
    this.cache = options.cache === false ? null : new DnsCache(() => this.clock.now(), options.cache ?? {});
  }

  query<Q extends QueryType>(name: string, type: Q): Promise<DnsResult<RecordOf[Q]>> {
    const qname = normalizeName(name);
    const key = `${type} ${qname}`;
    const cached = this.cache?.get(key);
    if (cached) return Promise.resolve(cached as DnsResult<RecordOf[Q]>);
    const running = this.inflight.get(key);
    if (running) return running as Promise<DnsResult<RecordOf[Q]>>;
    const p = this.lookup(qname, type).then((result) => {
      this.inflight.delete(key);
      this.cache?.put(key, result);
      return result;
    });
    this.inflight.set(key, p);
    return p;
  }

  private async lookup<Q extends QueryType>(name: string, type: Q): Promise<DnsResult<RecordOf[Q]>> {
    if (name === '' || name.length > 253 || name.split('.').some((l) => l.length === 0 || l.length > 63)) {
      return { kind: 'temporary', reason: `invalid name "${name.slice(0, 80)}"` };
    }
    let reason = 'no servers';
    for (let round = 0; round <= this.retries; round++) {
      for (const server of this.servers) {
        const id = randomInt(0, 65536);
        const query = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
        let verdict: Attempt<RecordOf[Q]> = await this.udp(server, query, id, name, type);
        if (verdict.kind === 'truncated') verdict = await this.tcp(server, query, id, name, type);
        if (verdict.kind === 'result') return verdict.result;
        reason = `${server.address}:${server.port}: ${verdict.kind === 'truncated' ? 'truncated over TCP' : verdict.reason}`;
      }
    }
    return { kind: 'temporary', reason };
  }

  private udp<Q extends QueryType>(server: ServerAddress, query: Buffer, id: number, name: string, type: Q): Promise<Attempt<RecordOf[Q]>> {
    return new Promise((resolve) => {
      const socket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
      let finished = false;
      const finish = (v: Attempt<RecordOf[Q]>): void => {
        if (finished) return;
        finished = true;
        cancel();
        socket.close();
        resolve(v);
      };
      const cancel = this.clock.schedule(this.timeoutMs, () => finish({ kind: 'error', reason: 'timeout' }));
      socket.on('error', (err) => finish({ kind: 'error', reason: err.message }));
      socket.on('message', (msg, rinfo) => {
        if (rinfo.port !== server.port) return;
        let decoded: packet.DecodedPacket;
        try {
          decoded = packet.decode(msg);
        } catch {
          finish({ kind: 'error', reason: 'malformed response' });
          return;
        }
        const v = interpretResponse(decoded, id, name, type);
        if (v.kind !== 'mismatch') finish(v);
      });
      socket.send(query, server.port, server.address, (err) => {
        if (err) finish({ kind: 'error', reason: err.message });
      });
    });
  }

  private tcp<Q extends QueryType>(server: ServerAddress, query: Buffer, id: number, name: string, type: Q): Promise<Attempt<RecordOf[Q]>> {
    return new Promise((resolve) => {
      const socket = tcpConnect({ host: server.address, port: server.port });
      let finished = false;
      let chunks: Buffer[] = [];
      let length = 0;
      const finish = (v: Attempt<RecordOf[Q]>): void => {
        if (finished) return;
        finished = true;
        cancel();
        socket.destroy();
        resolve(v);
      };
      const cancel = this.clock.schedule(this.timeoutMs, () => finish({ kind: 'error', reason: 'timeout (TCP)' }));
      socket.on('error', (err) => finish({ kind: 'error', reason: `TCP: ${err.message}` }));
      socket.on('close', () => finish({ kind: 'error', reason: 'TCP connection closed before the answer' }));
      socket.on('connect', () => {
        const framed = Buffer.alloc(query.length + 2);
        framed.writeUInt16BE(query.length, 0);
        query.copy(framed, 2);
        socket.write(framed);
      });
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (length > MAX_TCP_RESPONSE + 2) return finish({ kind: 'error', reason: 'TCP answer too long' });
        const all = Buffer.concat(chunks);
        chunks = [all];
        if (all.length < 2) return;
        const size = all.readUInt16BE(0);
        if (all.length < size + 2) return;
        let decoded: packet.DecodedPacket;
        try {
          decoded = packet.decode(all.subarray(2, size + 2));
        } catch {
          return finish({ kind: 'error', reason: 'malformed response (TCP)' });
        }
        const v = interpretResponse(decoded, id, name, type);
        finish(v.kind === 'mismatch' ? { kind: 'error', reason: `TCP: ${v.reason}` } : v);
      });
    });
  }
}

export function createResolver(options: ResolverOptions = {}): StubResolver {
  return new StubResolver(options);
}
