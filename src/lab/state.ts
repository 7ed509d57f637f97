/*
 * The on-disk record of a running lab: one state directory (`lab up --dir`) holding state.json (which
 * topology, the DNS server's port, each node's address, final config and pid), the zone and fault files
 * of the lab DNS server, and one subdirectory per node (config, store, log, pid file). Every lab
 * command after `up` starts from this record, so the CLI process that ran `up` may exit. `down` removes
 * the whole directory. Reads validate the JSON shape: a damaged state file is a LabError, not a crash.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export class LabError extends Error {
  override readonly name = 'LabError';
}

const nodeState = z.object({
  address: z.string(),
  /** the final configuration file `cartero serve` runs with */
  config: z.string(),
  log: z.string(),
  pid: z.number().int().positive().nullable(),
  role: z.string().optional(),
});

const stateSchema = z.object({
  version: z.literal(1),
  topology: z.string(),
  topologyDir: z.string(),
  createdAt: z.string(),
  dns: z.object({ pid: z.number().int().positive().nullable(), address: z.string(), port: z.number().int().min(1).max(65535) }),
  nodes: z.record(z.string(), nodeState),
  /** the database `lab up` created for the topology's `postgres: { database: fresh }`, dropped by `down` */
  postgres: z
    .object({
      server: z.string(),
      database: z.string(),
      /** PostgreSQL servers the lab started itself (pg-servers.ts): stopped and removed by `down` */
      servers: z
        .object({
          dir: z.string(),
          bin: z.string(),
          runAs: z.string().nullable(),
          synchronous: z.boolean(),
          servers: z.array(z.object({ name: z.enum(['primary', 'standby']), port: z.number().int(), data: z.string(), log: z.string(), options: z.string() })),
        })
        .optional(),
    })
    .optional(),
});

export type LabState = z.output<typeof stateSchema>;
export type NodeState = z.output<typeof nodeState>;

export const STATE_FILE = 'state.json';

export const paths = {
  state: (dir: string) => join(dir, STATE_FILE),
  zone: (dir: string) => join(dir, 'dns-zone.json'),
  faults: (dir: string) => join(dir, 'dns-faults.json'),
  /** written by the DNS process: { port, generation } once bound and after each reload */
  dnsReady: (dir: string) => join(dir, 'dns-ready.json'),
  dnsLog: (dir: string) => join(dir, 'dns.log'),
  nodeDir: (dir: string, node: string) => join(dir, 'nodes', node),
};

/** Writes a file so that a reader sees the old or the new content, never half of it. */
export function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

export function readState(dir: string): LabState {
  let text: string;
  try {
    text = readFileSync(paths.state(dir), 'utf8');
  } catch {
    throw new LabError(`no lab in ${dir} (run "cartero lab up TOPOLOGY --dir ${dir}" first)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LabError(`${paths.state(dir)} is not valid JSON; remove the directory and start again`);
  }
  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) throw new LabError(`${paths.state(dir)} is damaged (${parsed.error.issues[0]?.path.join('.') ?? '?'}); remove the directory and start again`);
  return parsed.data;
}

export function writeState(dir: string, state: LabState): void {
  writeAtomic(paths.state(dir), `${JSON.stringify(state, null, 2)}\n`);
}

/** The DNS process's readiness record, or null while it is not there (yet). */
export function readDnsReady(dir: string): { port: number; generation: number } | null {
  try {
    const v = JSON.parse(readFileSync(paths.dnsReady(dir), 'utf8')) as unknown;
    const parsed = z.object({ port: z.number().int(), generation: z.number().int() }).safeParse(v);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
