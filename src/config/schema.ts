/*
 * The schema of a node's YAML configuration (docs/configuration.md is its reference). Every object is
 * strict, so a misspelt key is an error rather than a silently ignored setting. Schema-level messages
 * complete the sentence "expected …" of a problem line (see problems.ts).
 * Pure data description: no I/O, no path resolution (validate.ts does that).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { routingSettingsSchema } from '../routing/settings.js';
import { parseCidr } from './cidr.js';
import {
  DEFAULT_DELIVERY,
  DEFAULT_LISTENERS,
  DEFAULT_MESSAGE_SIZE_LIMIT,
  DEFAULT_MYNETWORKS,
  DEFAULT_POOL_SIZE,
  DEFAULT_STORE_PATH,
  defaultHostname,
} from './defaults.js';

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;

const hostName = z.string({ error: 'a host name such as mx.example.test' }).regex(HOST_NAME, { error: 'a host name such as mx.example.test' });
const domainName = z
  .string({ error: 'a domain name such as example.test' })
  .regex(HOST_NAME, { error: 'a domain name such as example.test' })
  .transform((d) => d.toLowerCase().replace(/\.$/, ''));

const ipAddress = z.string().refine((s) => isIP(s) !== 0 && !s.includes('%'), {
  error: 'an IPv4 or IPv6 address such as 127.0.0.1 or ::1',
});

const cidr = z.string().superRefine((s, ctx) => {
  const parsed = parseCidr(s);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const port = z.number({ error: 'a port number from 1 to 65535' }).int().min(1).max(65535);
const positiveInt = z.number({ error: 'a whole number of 1 or more' }).int().min(1);

const listenerFields = {
  address: ipAddress,
  port,
  /** `implicit`: TLS from the first byte (smtps 465, imaps 993, pop3s 995) */
  tls: z.literal('implicit').optional(),
  max_connections: positiveInt.optional(),
  max_connections_per_client: positiveInt.optional(),
};

const listener = z.strictObject(listenerFields);
/** An LMTP listener on a Unix domain socket (Cyrus/Dovecot style, for an MTA on the same machine). */
const unixListener = z.strictObject({
  path: z.string({ error: 'an absolute socket path such as /run/cartero/lmtp.sock' }).regex(/^\//, { error: 'an absolute socket path such as /run/cartero/lmtp.sock' }).max(107),
  mode: z.number({ error: 'a file mode such as 0o660 (432)' }).int().min(0).max(0o777).optional(),
  max_connections: positiveInt.optional(),
});
const smtpListener = z.strictObject({ ...listenerFields, submission: z.boolean().optional() });

const tlsFiles = z.strictObject({
  cert: z.string().min(1, { error: 'a PEM certificate file name' }),
  key: z.string().min(1, { error: 'a PEM private key file name' }),
});

const embeddedStore = z.strictObject({
  backend: z.literal('embedded'),
  path: z.string({ error: 'a directory path for the embedded store' }).min(1),
  migrate_on_start: z.boolean().default(true),
});

const postgresStore = z.strictObject({
  backend: z.literal('postgres'),
  url: z
    .string({ error: 'a postgres:// connection URL' })
    .regex(/^postgres(ql)?:\/\//, { error: 'a postgres:// connection URL' }),
  pool_size: positiveInt.max(1000).default(DEFAULT_POOL_SIZE),
  migrate_on_start: z.boolean().default(true),
});

const store = z
  .discriminatedUnion('backend', [embeddedStore, postgresStore])
  .prefault({ backend: 'embedded', path: DEFAULT_STORE_PATH });

const D = DEFAULT_DELIVERY;
const delivery = z
  .strictObject({
    recipient_delimiter: z
      .string({ error: 'a string of delimiter characters such as "+" (empty: no subaddressing)' })
      .max(8)
      .regex(/^[^\s@"%!\\]*$/, { error: 'delimiter characters other than space, @, ", %, ! and \\' })
      .default(D.recipient_delimiter),
    minimal_backoff: positiveInt.default(D.minimal_backoff),
    maximal_backoff: positiveInt.default(D.maximal_backoff),
    maximal_queue_lifetime: positiveInt.default(D.maximal_queue_lifetime),
    concurrency: positiveInt.max(10_000).default(D.concurrency),
    lease_seconds: positiveInt.max(86_400).default(D.lease_seconds),
    poll_interval_ms: positiveInt.max(3_600_000).default(D.poll_interval_ms),
    virtual_alias_recursion_limit: positiveInt.max(1000).default(D.virtual_alias_recursion_limit),
    virtual_alias_expansion_limit: positiveInt.max(100_000).default(D.virtual_alias_expansion_limit),
    /** seconds before the sender is told a message is still queued (Postfix's delay_warning_time); 0 = never */
    delay_warning_time: z.number({ error: 'a number of seconds (0 = off)' }).int().min(0).default(D.delay_warning_time),
    /** how long our own notices are retried before they are given up (Postfix's bounce_queue_lifetime) */
    bounce_queue_lifetime: positiveInt.default(D.bounce_queue_lifetime),
    /** where a notice that cannot be delivered goes, once (Postfix's 2bounce_notice_recipient); default postmaster@ first domain */
    double_bounce_recipient: z.string().regex(/^[^\s@]+@[^\s@]+$/, { error: 'an address such as postmaster@example.org' }).optional(),
    /** bytes of the original message a bounce may return (Postfix's bounce_size_limit) */
    bounce_size_limit: positiveInt.default(D.bounce_size_limit),
    /** seconds an exact copy (Message-ID and body) of a delivered message is not filed again into the same account (Cyrus's duplicate suppression); 0 = off */
    duplicate_suppression_window: z.number({ error: 'a number of seconds (0 = off)' }).int().min(0).max(30 * 86_400).default(D.duplicate_suppression_window),
  })
  .superRefine((d, ctx) => {
    if (d.maximal_backoff < d.minimal_backoff) {
      ctx.addIssue({ code: 'custom', path: ['maximal_backoff'], message: `a number >= minimal_backoff (${d.minimal_backoff})` });
    }
  })
  .prefault({});

function section<L extends z.ZodType>(entry: L, defaults: readonly z.input<L>[]) {
  return {
    listen: z.array(entry).prefault(defaults as z.input<L>[]),
    tls: tlsFiles.optional(),
  };
}

const seconds = z.number({ error: 'a number of seconds' }).positive();

const dns = z
  .strictObject({
    /** "ip" or "ip:port" ("[v6]:port"); default: the nameservers of /etc/resolv.conf */
    servers: z.array(z.string().regex(/^(\[[0-9a-f:.]+\]|[0-9a-f:.]+)(:\d{1,5})?$/i, { error: 'an address such as 127.0.0.53 or 127.0.0.1:5353' })).optional(),
    timeout: seconds.default(5),
    retries: z.number().int().min(0).max(10).default(2),
  })
  .prefault({});

const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify'] as const;
const smtpClient = z
  .strictObject({
    /** the port of MX hosts and of [host] destinations without one (Postfix's smtp_port) */
    port: port.default(25),
    /** STARTTLS policy (Postfix's smtp_tls_security_level) and per-destination exceptions */
    tls: z.enum(TLS_LEVELS).default('may'),
    tls_policy: z.record(z.string(), z.enum(TLS_LEVELS)).default({}),
    /** deliveries at once per destination, across the node */
    destination_concurrency: positiveInt.max(1000).default(20),
    /** recipients per SMTP transaction (Postfix's smtp_destination_recipient_limit) */
    recipient_limit: positiveInt.max(1000).default(50),
    connect_timeout: seconds.default(30),
    command_timeout: seconds.default(300),
    data_timeout: seconds.default(180),
    /** after three connection failures in a row a destination is left alone this long (its mail waits) */
    dead_destination_seconds: z.number({ error: 'a number of seconds' }).positive().max(86_400).default(60),
    /** bind outgoing connections to this address (labs run each node on its own 127.0.0.x) */
    bind_address: ipAddress.optional(),
  })
  .prefault({});

const cluster = z
  .strictObject({
    /** this node's name in the registry; default: hostname (give each node of a cluster its own) */
    node_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { error: 'a node name of letters, digits, ".", "_" and "-"' }).optional(),
    heartbeat_seconds: z.number({ error: 'a number of seconds' }).positive().max(3600).default(5),
  })
  .prefault({});

export const configSchema = z.strictObject({
  hostname: hostName.default(defaultHostname),
  /** where `serve` writes its process id for `cartero reload`; relative to the configuration file */
  pid_file: z.string().min(1).default('cartero.pid'),
  store,
  domains: z.array(domainName).default([]),
  relay_domains: z.array(domainName).default([]),
  mynetworks: z.array(cidr).default([...DEFAULT_MYNETWORKS]),
  /** domain → transport such as "smtp:[127.0.0.3]:2526" (parsed by the routing code) */
  transports: z.record(z.string(), z.string().min(1, { error: 'a transport such as smtp:[host]:port' })).default({}),
  smtp: z
    .strictObject({
      ...section(smtpListener, DEFAULT_LISTENERS.smtp),
      message_size_limit: positiveInt.default(DEFAULT_MESSAGE_SIZE_LIMIT),
      /** recipients per message (Postfix's smtpd_recipient_limit): 452 4.5.3 beyond */
      recipient_limit: positiveInt.max(100_000).default(1000),
      /** Received: lines, ours included, beyond which a message is refused as a loop (Postfix's hopcount_limit) */
      hopcount_limit: positiveInt.max(1000).default(50),
      /** protocol errors before 421 and disconnect (Postfix's smtpd_hard_error_limit) */
      error_limit: positiveInt.max(1000).default(10),
      /** idle seconds waiting for a command (RFC 5321 §4.5.3.2: at least 300) */
      command_timeout: positiveInt.max(86_400).default(300),
      /** idle seconds waiting for message data */
      data_timeout: positiveInt.max(86_400).default(180),
      /**
       * maintenance (Postfix's `defer`): every SMTP listener answers each new session or transaction at
       * `at` with `reply`, a 4xx; applied to live sessions by a reload. Absent: off.
       */
      tempfail: z
        .strictObject({
          at: z.enum(['connect', 'mail', 'rcpt', 'data'], { error: 'connect, mail, rcpt or data' }).default('mail'),
          reply: z
            .string()
            .regex(/^4\d\d 4\.\d{1,3}\.\d{1,3} [^\x00-\x1f\x7f]{1,400}$/, { error: 'a temporary reply such as "451 4.3.2 Service temporarily unavailable"' })
            .default('451 4.3.2 Service temporarily unavailable, try again later'),
        })
        .optional(),
    })
    .prefault({}),
  imap: z
    .strictObject({
      ...section(listener, DEFAULT_LISTENERS.imap),
      /** idle seconds before an authenticated session is logged out (RFC 9051 §5.4: at least 30 minutes) */
      autologout: z.number({ error: 'a number of seconds, at least 1800' }).int().min(1800, { error: 'at least 1800 seconds (RFC 9051 §5.4)' }).max(86_400).default(1800),
      /** sessions one user may have logged in at once, per node */
      max_connections_per_user: positiveInt.max(100_000).default(50),
    })
    .prefault({}),
  pop3: z.strictObject(section(listener, DEFAULT_LISTENERS.pop3)).prefault({}),
  lmtp: z.strictObject(section(z.union([listener, unixListener]), DEFAULT_LISTENERS.lmtp)).prefault({}),
  delivery,
  dns,
  smtp_client: smtpClient,
  cluster,
  ...routingSettingsSchema.shape,
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      format: z.enum(['json', 'text']).default('json'),
      /** seconds between `stats` lines (event-loop delay, memory); 0 = never */
      stats_interval: z.number({ error: 'a number of seconds (0 = off)' }).int().min(0).default(0),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type StoreSettings = Config['store'];
export type LogSettings = Config['log'];
export type DeliverySettings = Config['delivery'];
export type TlsFiles = z.output<typeof tlsFiles>;

export const PROTOCOLS = ['smtp', 'lmtp', 'imap', 'pop3'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** One configured listener, flattened out of its protocol section. */
export interface ListenerSettings {
  proto: Protocol;
  /** the key path of the entry, e.g. smtp.listen[1], for messages */
  key: string;
  /** the socket path for a Unix listener (where `address` repeats the path and `port` is 0) */
  address: string;
  port: number;
  path?: string;
  /** file mode of a Unix socket */
  mode?: number;
  tls?: 'implicit';
  submission: boolean;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
}

export function configuredListeners(config: Config): ListenerSettings[] {
  const out: ListenerSettings[] = [];
  for (const proto of PROTOCOLS) {
    config[proto].listen.forEach((entry, i) => {
      if ('path' in entry) {
        out.push({
          proto,
          key: `${proto}.listen[${i}]`,
          address: entry.path,
          port: 0,
          path: entry.path,
          ...(entry.mode !== undefined ? { mode: entry.mode } : {}),
          submission: false,
          ...(entry.max_connections ? { maxConnections: entry.max_connections } : {}),
        });
        return;
      }
      out.push({
        proto,
        key: `${proto}.listen[${i}]`,
        address: entry.address,
        port: entry.port,
        ...(entry.tls ? { tls: entry.tls } : {}),
        submission: 'submission' in entry && entry.submission === true,
        ...(entry.max_connections ? { maxConnections: entry.max_connections } : {}),
        ...(entry.max_connections_per_client ? { maxConnectionsPerClient: entry.max_connections_per_client } : {}),
      });
    });
  }
  return out;
}
