/*
 * What a lab topology is: the `topology.yaml` of an examples/topologies/<name>/ directory, parsed and
 * checked as data (nodes on their own 127.0.0.x, the node config file each one runs, what to provision
 * in its store, and the DNS zone the lab server answers). Kept pure — text in, a Topology or a list of
 * problems out — so a broken topology is reported in one round and never half-started.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { parseYaml } from '../config/load.js';
import { issuesToProblems, expectedText, type ConfigProblem } from '../config/problems.js';
import type { Zone } from '../dns/authority.js';

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;
const ADDRESS = /^[^\s@]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

/** Labs bind loopback only: every node lives on one 127.0.0.0/8 address. */
const loopback = z.string().refine((s) => isIPv4(s) && s.startsWith('127.'), { error: 'a loopback IPv4 address such as 127.0.1.10' });
const address = z.string().regex(ADDRESS, { error: 'a mail address such as alice@example.org' }).transform((s) => s.toLowerCase());
const dnsName = z.string().regex(DNS_NAME, { error: 'a DNS name such as mx1.example.org' }).transform((s) => s.toLowerCase().replace(/\.$/, ''));

const account = z.union([address.transform((a) => ({ address: a, password: null as string | null })), z.strictObject({ address, password: z.string().min(1).nullable().default(null) })], {
  error: 'an address, or { address, password }',
});

const node = z.strictObject({
  name: z.string().regex(NAME, { error: 'a short lower-case name such as mx1' }),
  address: loopback,
  /** the node's YAML, relative to the topology directory */
  config: z.string().min(1, { error: 'a node configuration file name such as mx1.yaml' }),
  /** what the node's store holds before it starts (the directory; `cartero domain/user/alias add`) */
  domains: z.array(dnsName).default([]),
  accounts: z.array(account).default([]),
  aliases: z.record(z.string().min(3), z.array(address).min(1)).default({}),
  /**
   * A backup MX's recipient list (Postfix's relay_recipient_maps): the runner writes `file` in the
   * node's state directory with one `address address` line per account and alias of the node `from`.
   */
  relay_recipients: z
    .strictObject({
      from: z.string().regex(NAME),
      file: z.string().regex(/^[a-z0-9._-]+$/i, { error: 'a plain file name' }),
      /**
       * Map each alias to its targets instead of to itself, so this node expands aliases and `from` only
       * files mail (LMTP backends recognise a frontend's resend of filed and queued mail alike through
       * XQUEUEID, docs/xqueueid.md; expanding at the frontend saves the backend the queue hop).
       */
      expand_aliases: z.boolean().default(false),
    })
    .optional(),
  /**
   * Files of the node other than its config (lookup tables such as a virtual user table), copied from
   * the topology directory into the node's state directory by `lab up` only, so the node's config names
   * them by plain file name and an edit made in the lab (then `cartero reload`) survives `lab start`.
   */
  files: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, { error: 'a plain file name in the topology directory' })).default([]),
  /** shown by `lab status` */
  role: z.string().max(60).optional(),
});

const mx = z.strictObject({ preference: z.number().int().min(0).max(65535), exchange: z.string().regex(/^(\.|[a-z0-9_.-]+)$/i) });
const zoneRecords = z.strictObject({
  MX: z.array(mx).optional(),
  A: z.array(z.string().refine((s) => isIPv4(s), { error: 'an IPv4 address' })).optional(),
  TXT: z.array(z.string()).optional(),
  CNAME: z.string().regex(DNS_NAME).optional(),
  ttl: z.number().int().min(0).max(86_400).optional(),
});

/**
 * A cluster lab's shared database: `database: fresh` creates an empty database on `server` at `lab up`
 * (every node whose store is postgres gets its URL) and drops it at `lab down`.
 */
const postgres = z.strictObject({
  database: z.literal('fresh', { error: 'fresh (a new database for this lab, dropped at lab down)' }),
  /** default $CARTERO_LAB_PG_URL or postgres://postgres@127.0.0.1:5432/postgres */
  server: z.string().regex(/^postgres(ql)?:\/\//, { error: 'a postgres:// URL of the server to create the database on' }).optional(),
  /**
   * The lab starts PostgreSQL itself: a primary and a streaming-replication standby on free loopback
   * ports (src/lab/pg-servers.ts); the nodes' store URL lists both with target_session_attrs=read-write.
   * `synchronous` (default true): synchronous_commit = remote_apply, synchronous_standby_names = '*'.
   */
  replication: z.strictObject({ synchronous: z.boolean().default(true) }).optional(),
});

const topologySchema = z.strictObject({
  name: z.string().regex(NAME, { error: 'a short lower-case name such as t1-backup-mx' }),
  description: z.string().default(''),
  nodes: z.array(node).min(1, { error: 'at least one node' }),
  zone: z.record(dnsName, zoneRecords).default({}),
  postgres: postgres.optional(),
});

/** What the runner itself writes in a node's state directory (runner.ts). */
const RESERVED_FILES = new Set(['cartero.yaml', 'cartero.log', 'cartero.pid', 'data']);

export type Topology = z.output<typeof topologySchema>;
export type TopologyNode = Topology['nodes'][number];

export type ParsedTopology = { topology: Topology } | { problems: ConfigProblem[] };

/** Parses topology.yaml text: schema problems, then the cross-checks (unique names and addresses, known nodes). */
export function parseTopology(text: string): ParsedTopology {
  const raw = parseYaml(text);
  if ('problems' in raw) return raw;
  const input = raw.value ?? {};
  const parsed = topologySchema.safeParse(input, { error: (issue) => expectedText(issue) });
  if (!parsed.success) return { problems: issuesToProblems(parsed.error.issues, input, topologySchema) };
  const t = parsed.data;
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  const addresses = new Map<string, number>();
  t.nodes.forEach((n, i) => {
    const sameName = names.get(n.name);
    if (sameName !== undefined) problems.push({ key: `nodes[${i}].name`, found: JSON.stringify(n.name), expected: `a name not already used by nodes[${sameName}]` });
    else names.set(n.name, i);
    const sameAddress = addresses.get(n.address);
    if (sameAddress !== undefined) problems.push({ key: `nodes[${i}].address`, found: JSON.stringify(n.address), expected: `an address not already used by nodes[${sameAddress}]` });
    else addresses.set(n.address, i);
    if (n.config.includes('/') || n.config.startsWith('.')) problems.push({ key: `nodes[${i}].config`, found: JSON.stringify(n.config), expected: 'a file name in the topology directory' });
    n.files.forEach((f, j) => {
      // the state directory already holds these names: a copied file must not replace them
      const taken = RESERVED_FILES.has(f) || f === n.relay_recipients?.file || n.files.indexOf(f) !== j;
      if (taken) problems.push({ key: `nodes[${i}].files[${j}]`, found: JSON.stringify(f), expected: `a file name other than ${[...RESERVED_FILES, ...(n.relay_recipients ? [n.relay_recipients.file] : [])].join(', ')} and the node's other files` });
    });
  });
  if (t.postgres?.replication && t.postgres.server !== undefined) {
    problems.push({ key: 'postgres.server', found: JSON.stringify(t.postgres.server), expected: 'no server with replication (the lab starts its own primary and standby)' });
  }
  t.nodes.forEach((n, i) => {
    if (n.relay_recipients && !names.has(n.relay_recipients.from)) {
      problems.push({ key: `nodes[${i}].relay_recipients.from`, found: JSON.stringify(n.relay_recipients.from), expected: `the name of a node (${[...names.keys()].join(', ')})` });
    }
  });
  return problems.length > 0 ? { problems } : { topology: t };
}

export function findNode(t: Topology, name: string): TopologyNode | undefined {
  return t.nodes.find((n) => n.name === name);
}

/** The zone as the lab DNS server takes it. */
export function zoneOf(t: Topology): Zone {
  const zone: Zone = {};
  for (const [name, records] of Object.entries(t.zone)) {
    zone[name] = {
      ...(records.MX ? { MX: records.MX.map((m) => ({ preference: m.preference, exchange: m.exchange.toLowerCase().replace(/\.$/, '') })) } : {}),
      ...(records.A ? { A: records.A } : {}),
      ...(records.TXT ? { TXT: records.TXT } : {}),
      ...(records.CNAME ? { CNAME: records.CNAME } : {}),
      ...(records.ttl !== undefined ? { ttl: records.ttl } : {}),
    };
  }
  return zone;
}

/**
 * A backup MX's recipient list in Postfix `key value` form: every account and alias of `source`, each
 * mapped to itself, so the backup accepts exactly what the primary would and passes it on unchanged.
 * Catch-alls (`@domain`) are kept as keys: the primary accepts the whole domain, so does the backup.
 * With `expandAliases` an alias maps to its targets instead (an LMTP frontend expands them itself).
 */
export function relayRecipientTable(source: TopologyNode, options: { expandAliases?: boolean } = {}): string {
  const entries = new Map<string, string>();
  for (const a of source.accounts) entries.set(a.address, a.address);
  for (const [alias, targets] of Object.entries(source.aliases)) {
    const key = alias.toLowerCase();
    entries.set(key, options.expandAliases ? targets.join(', ') : key);
  }
  const lines = [...entries.keys()].sort().map((k) => `${k} ${entries.get(k)!}`);
  return `# generated by cartero lab from the accounts and aliases of ${source.name}; do not edit\n${lines.join('\n')}\n`;
}
