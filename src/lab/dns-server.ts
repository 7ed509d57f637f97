/*
 * The lab's DNS server process (`cartero lab dns`): the loopback authority (src/dns/authority.ts)
 * serving a zone file, with per-name faults read from a second file. It runs as its own process so a
 * lab outlives the command that started it and so tests can break DNS for every node at once: they
 * rewrite the fault file and send SIGHUP; the process re-reads both files and bumps `generation` in
 * its ready file, which is how the writer knows the change is live. A file that does not parse keeps
 * the previous zone/faults and is logged.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { startAuthority, type AuthorityServer, type Fault, type Zone } from '../dns/authority.js';
import type { Logger } from '../log/logger.js';
import { writeAtomic } from './state.js';

export interface LabDnsOptions {
  zoneFile: string;
  faultsFile: string;
  readyFile: string;
  address: string;
  /** 0: any free port */
  port: number;
  logger: Logger;
}

const FAULTS: readonly Fault[] = ['servfail', 'refused', 'drop', 'garbage'];

const faultsSchema = z.record(z.string(), z.enum(FAULTS as [Fault, ...Fault[]]));
const zoneSchema = z.record(
  z.string(),
  z.object({
    MX: z.array(z.object({ preference: z.number().int(), exchange: z.string() })).optional(),
    A: z.array(z.string()).optional(),
    AAAA: z.array(z.string()).optional(),
    TXT: z.array(z.string()).optional(),
    PTR: z.array(z.string()).optional(),
    CNAME: z.string().optional(),
    ttl: z.number().int().min(0).optional(),
  }),
);

/** Reads and checks a JSON file; a missing fault file means "no faults". */
function readJson<T>(file: string, schema: z.ZodType<T>, missing: T | null): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (missing !== null && (err as NodeJS.ErrnoException).code === 'ENOENT') return missing;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
  return parsed.data;
}

/** How many answered queries the authority keeps for tests; the lab process trims it to stay bounded. */
const QUERY_LOG_LIMIT = 10_000;

export interface LabDns {
  server: AuthorityServer;
  reload(): boolean;
  close(): Promise<void>;
}

export async function startLabDns(o: LabDnsOptions): Promise<LabDns> {
  const zone = readJson<Zone>(o.zoneFile, zoneSchema as z.ZodType<Zone>, null);
  const faults = readJson<Record<string, Fault>>(o.faultsFile, faultsSchema, {});
  const server = await startAuthority({ zone, faults, address: o.address, port: o.port, logger: o.logger });
  let generation = 0;
  const ready = () => writeAtomic(o.readyFile, `${JSON.stringify({ port: server.port, generation })}\n`);
  ready();
  o.logger.info({ address: server.address, port: server.port, names: Object.keys(zone).length, faults }, 'lab DNS listening');
  const trim = setInterval(() => {
    if (server.queries.length > QUERY_LOG_LIMIT) server.queries.splice(0, server.queries.length - QUERY_LOG_LIMIT);
  }, 5000);
  trim.unref();
  return {
    server,
    reload() {
      try {
        const z2 = readJson<Zone>(o.zoneFile, zoneSchema as z.ZodType<Zone>, null);
        const f2 = readJson<Record<string, Fault>>(o.faultsFile, faultsSchema, {});
        server.setZone(z2);
        server.setFaults(f2);
        generation++;
        ready();
        o.logger.info({ generation, faults: f2 }, 'lab DNS reloaded');
        return true;
      } catch (err) {
        o.logger.error({ err: (err as Error).message }, 'lab DNS reload failed; keeping the previous zone and faults');
        return false;
      }
    },
    async close() {
      clearInterval(trim);
      await server.close();
    },
  };
}

/** Runs the server until SIGTERM/SIGINT; SIGHUP reloads. Resolves with the exit code. */
export async function runLabDns(o: LabDnsOptions): Promise<number> {
  const dns = await startLabDns(o);
  return new Promise<number>((resolve) => {
    const onHup = (): void => void dns.reload();
    const stop = (): void => {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void dns.close().then(() => {
        o.logger.info('lab DNS stopped');
        o.logger.flush(() => resolve(0));
      });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
