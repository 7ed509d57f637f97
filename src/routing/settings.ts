/*
 * The configuration keys of address rewriting and transport selection, under Postfix's main.cf names,
 * as a zod schema the top-level configuration merges in (its keys sit at the top level, beside
 * `domains` and `relay_domains`). Every object is strict. Pure data description: file paths are
 * resolved and tables opened by routing/open.ts, never here.
 */
import { z } from 'zod';
import { relayTransportProblem } from './transport.js';

const mapFile = z.strictObject({ file: z.string().min(1, { error: 'a path to a lookup table file' }) });
const inlineTable = z.record(
  z.string(),
  z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'a value, or a list of addresses' }),
);

/** A table kept in the store, shared by every node (`cartero map set|import NAME ...`). */
const mapStore = z.strictObject({
  store: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/i, { error: 'a store map name: letters, digits, "_", "." and "-", at most 64' }),
});

/** One table: `{ file: path }` (Postfix `key value` text), `{ store: NAME }`, or an inline mapping of keys to values. */
export const mapSourceSchema = z.union([mapFile, mapStore, inlineTable], {
  error: 'a lookup table: { file: PATH }, { store: NAME } or a mapping of keys to values',
});
/** A table or a list of tables searched in order (the first hit wins). */
export const mapListSchema = z.union([mapSourceSchema, z.array(mapSourceSchema)]);

const MASQ_DOMAIN = /^!?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i;
const hostOrLiteral = /^(\[[0-9a-f:.]+\]|[a-z0-9_-]+(\.[a-z0-9_-]+)*)$/i;

export const TLS_POLICIES = ['none', 'may', 'encrypt', 'verify'] as const;
export type TlsPolicy = (typeof TLS_POLICIES)[number];

export const MASQUERADE_CLASSES = ['envelope_sender', 'envelope_recipient', 'header_sender', 'header_recipient'] as const;
export type MasqueradeClass = (typeof MASQUERADE_CLASSES)[number];

export const HEADER_REWRITE_CLIENTS = ['permit_mynetworks', 'permit_sasl_authenticated', 'static:all'] as const;
export type HeaderRewriteClient = (typeof HEADER_REWRITE_CLIENTS)[number];

const relayhost = z.strictObject({
  /** a host name or an address literal such as [192.0.2.1] */
  host: z.string().regex(hostOrLiteral, { error: 'a host name such as smtp.example.org, or an address literal such as [192.0.2.1]' }),
  port: z.number({ error: 'a port number from 1 to 65535' }).int().min(1).max(65535).optional(),
  /** true: look up the host's MX records first (Postfix's relayhost without brackets) */
  mx_lookup: z.boolean().default(false),
  auth: z
    .strictObject({
      username: z.string().min(1),
      password: z.string().optional(),
      password_file: z.string().min(1).optional(),
    })
    .refine((a) => (a.password === undefined) !== (a.password_file === undefined), {
      error: 'exactly one of password and password_file',
    })
    .optional(),
  tls: z.enum(TLS_POLICIES).default('may'),
});

export const routingSettingsSchema = z.strictObject({
  /** domain appended to an unqualified map result such as "root" (Postfix's myorigin); default: hostname */
  myorigin: z.string().regex(hostOrLiteral, { error: 'a domain name such as example.org' }).optional(),
  canonical_maps: mapListSchema.optional(),
  sender_canonical_maps: mapListSchema.optional(),
  recipient_canonical_maps: mapListSchema.optional(),
  masquerade_domains: z.array(z.string().regex(MASQ_DOMAIN, { error: 'a domain name, or !domain for an exception' })).default([]),
  masquerade_exceptions: z.array(z.string().min(1).regex(/^[^\s@]+$/, { error: 'a user name (local part) such as root' })).default([]),
  masquerade_classes: z.array(z.enum(MASQUERADE_CLASSES)).default(['envelope_sender', 'header_sender', 'header_recipient']),
  /** which clients' mail gets its header addresses rewritten (envelope addresses always are) */
  local_header_rewrite_clients: z.array(z.enum(HEADER_REWRITE_CLIENTS)).default(['permit_mynetworks', 'permit_sasl_authenticated']),
  propagate_unmatched_extensions: z.array(z.enum(['canonical', 'virtual'])).default(['canonical', 'virtual']),
  virtual_alias_maps: mapListSchema.optional(),
  /** domains that exist only in virtual_alias_maps: an address there without an entry is unknown (550) */
  virtual_alias_domains: z.array(z.string().regex(hostOrLiteral, { error: 'a domain name such as example.org' })).default([]),
  transport_maps: mapListSchema.optional(),
  /** transport for relay_domains without a transport_maps entry; default: MX lookup of the domain */
  relay_transport: z
    .string()
    .min(1)
    .superRefine((v, ctx) => {
      const problem = relayTransportProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `a transport such as relay or smtp:[host]:port (${problem})` });
    })
    .default('relay'),
  relayhost: relayhost.optional(),
});

export type RoutingSettings = z.output<typeof routingSettingsSchema>;
export type RoutingSettingsInput = z.input<typeof routingSettingsSchema>;
export type MapSource = z.output<typeof mapSourceSchema>;
export type MapListSetting = z.output<typeof mapListSchema>;
export type RelayhostSettings = z.output<typeof relayhost>;

/** The names `cartero map test NAME` accepts: the map-valued keys. */
export const MAP_NAMES = ['canonical_maps', 'sender_canonical_maps', 'recipient_canonical_maps', 'virtual_alias_maps', 'transport_maps'] as const;
export type MapName = (typeof MAP_NAMES)[number];
