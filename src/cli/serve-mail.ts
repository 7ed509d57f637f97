/*
 * Wires the mail path for `cartero serve`: the SmtpServices the SMTP server calls (recipient and sender
 * policy, authentication, queue commit with rewriting and virtual aliases), those of LMTP listeners
 * (final delivery), and the queue scheduler with its router, the local agent, the SMTP/LMTP client and
 * the DSN notifier. Opens the lookup tables (a broken one stops the start with MapError); binds no port
 * and starts nothing until scheduler.start().
 * Errors come from the parts it wires (store errors propagate to the SMTP session).
 */
import { ClusterSlotGate, type SharedSlotGate } from '../cluster/destination-slots.js';
import { networkInterfaces } from 'node:os';
import { configuredListeners, type Config } from '../config/schema.js';
import { createSmtpAgent } from '../delivery/smtp/agent.js';
import { createResolver } from '../dns/resolver.js';
import { buildRewriter, buildRouterSettings, buildVirtual, headerRewritePolicy, openRoutingMaps } from '../routing/open.js';
import { createRouter, type Transport } from '../routing/transport.js';
import { createAuthenticator } from '../auth/authenticate.js';
import type { Logger } from '../log/logger.js';
import { LocalDomains } from '../policy/domains.js';
import { createNetworkMatcher } from '../policy/mynetworks.js';
import { cachedLocalLookup, DEFAULT_LOOKUP_CACHE_MS } from '../policy/lookup.js';
import { createRecipientPolicy } from '../policy/recipients.js';
import { createSenderPolicy } from '../policy/sender.js';
import { wireQueue } from '../queue/wiring.js';
import { createLmtpServices } from '../delivery/lmtp-services.js';
import type { SmtpServices } from '../smtp/services.js';
import type { Clock, Store } from '../store/index.js';
import { systemClock } from '../store/api.js';

export interface MailServicesOptions {
  config: Config;
  store: Store;
  logger: Logger;
  clock?: Clock;
}

export interface MailServices {
  services: SmtpServices;
  /** what LMTP listeners use: final delivery answered per recipient */
  lmtpServices: SmtpServices;
  scheduler: { start(): void; stop(): Promise<void>; kick(): void };
  /** the `mynetworks` test for ClientInfo.trusted */
  trusted(address: string): boolean;
  /** re-reads the lookup table files (SIGHUP); a broken file keeps its old table and rejects */
  reloadMaps(): Promise<void>;
  /** closes the SMTP client's cached connections (after the scheduler stopped) */
  close(): Promise<void>;
}

/** Addresses that are us, for the MX loop test: every listener address, or every interface's for a wildcard. */
function ourAddresses(config: Config): string[] {
  const listed = configuredListeners(config)
    .filter((l) => l.path === undefined)
    .map((l) => l.address);
  const wildcard = listed.some((a) => a === '0.0.0.0' || a === '::');
  const interfaces = wildcard ? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)) : [];
  const bind = config.smtp_client.bind_address ? [config.smtp_client.bind_address] : [];
  return [...new Set([...listed, ...interfaces, ...bind])].filter((a) => a !== '0.0.0.0' && a !== '::');
}

/** The destination's domain or host, as tls_policy keys name it. */
function policyKey(destination: string): string {
  return destination.replace(/^(smtp|lmtp):/, '').replace(/^\[([^\]]*)\].*$/, '$1').replace(/:\d+$/, '').toLowerCase();
}

function createRemoteAgent(config: Config, logger: Logger, sharedSlots: SharedSlotGate | null = null) {
  const c = config.smtp_client;
  const resolver = createResolver({
    ...(config.dns.servers ? { servers: config.dns.servers } : {}),
    timeoutMs: config.dns.timeout * 1000,
    retries: config.dns.retries,
  });
  // What the router chose per destination: the relayhost's credentials and TLS policy travel with it.
  const chosen = new Map<string, Extract<Transport, { kind: 'smtp' | 'lmtp' }>>();
  const agent = createSmtpAgent({
    resolver,
    logger,
    myHostname: config.hostname,
    myAddresses: ourAddresses(config),
    smtpPort: c.port,
    tls: (destination, host) => {
      const t = chosen.get(destination);
      const level = (t?.kind === 'smtp' ? t.tls : undefined) ?? c.tls_policy[policyKey(destination)] ?? c.tls_policy[host.toLowerCase()] ?? c.tls;
      return { level };
    },
    relayAuth: (destination) => {
      const t = chosen.get(destination);
      return t?.kind === 'smtp' && t.auth ? t.auth : null;
    },
    concurrency: () => c.destination_concurrency,
    sharedSlots,
    recipientLimit: c.recipient_limit,
    lmtpRecipientLimit: c.recipient_limit,
    siteDown: { backoffMs: c.dead_destination_seconds * 1000 },
    timeouts: { connectMs: c.connect_timeout * 1000, commandMs: c.command_timeout * 1000, dataBlockMs: c.data_timeout * 1000 },
    ...(c.bind_address ? { localAddress: c.bind_address } : {}),
  });
  return { agent, onRemoteTransport: (destination: string, t: Extract<Transport, { kind: 'smtp' | 'lmtp' }>) => void chosen.set(destination, t) };
}

export async function startMailServices(options: MailServicesOptions): Promise<MailServices> {
  const { config, store, logger } = options;
  const clock = options.clock ?? systemClock;
  const d = config.delivery;
  const domains = new LocalDomains({ store, domains: config.domains, relayDomains: config.relay_domains, clock });
  const delimiters = d.recipient_delimiter;
  // file paths in the configuration are absolute already (config/validate.ts)
  // store tables ({ store: NAME }) are read from the node's store and kept fresh until close()
  const maps = await openRoutingMaps(config, { baseDir: '/', logger, store: store.maps });
  const routing = { isLocal: (domain: string) => domains.isLocal(domain), delimiters, hostname: config.hostname, logger };
  const virtual = buildVirtual(config, maps, routing);
  const rewriter = buildRewriter(config, maps, routing);
  const trusted = createNetworkMatcher(config.mynetworks);
  const router = createRouter(buildRouterSettings(config, maps, { delimiters, baseDir: '/', extraTransports: config.transports }), { domains });
  // on PostgreSQL destination_concurrency is a limit across the cluster (src/cluster/destination-slots.ts)
  const slotStore = store.cluster.destinationSlots;
  const sharedSlots = slotStore ? new ClusterSlotGate({ store: slotStore, owner: `${config.hostname}:${process.pid}`, logger, leaseMs: d.lease_seconds * 1000 }) : null;
  const remote = createRemoteAgent(config, logger, sharedSlots);
  // one short-lived directory cache for the RCPT check and the commit's expansion of the same address
  const lookup = cachedLocalLookup(store, delimiters, DEFAULT_LOOKUP_CACHE_MS, clock);
  const { commit, scheduler, local } = wireQueue({
    store,
    logger,
    clock,
    domains,
    delimiters,
    owner: `${config.hostname}:${process.pid}`,
    concurrency: d.concurrency,
    leaseMs: d.lease_seconds * 1000,
    pollIntervalMs: d.poll_interval_ms,
    duplicateWindowMs: d.duplicate_suppression_window * 1000,
    backoff: { minimalMs: d.minimal_backoff * 1000, maximalMs: d.maximal_backoff * 1000, lifetimeMs: d.maximal_queue_lifetime * 1000 },
    recursionLimit: d.virtual_alias_recursion_limit,
    expansionLimit: d.virtual_alias_expansion_limit,
    router,
    remote: remote.agent,
    onRemoteTransport: remote.onRemoteTransport,
    virtual,
    lookup,
    rewriting: rewriter ? { rewriter, headersFor: headerRewritePolicy(config.local_header_rewrite_clients, trusted) } : null,
    dsn: {
      hostname: config.hostname,
      delayWarningMs: d.delay_warning_time * 1000,
      returnLimit: d.bounce_size_limit,
      bounceLifetimeMs: d.bounce_queue_lifetime * 1000,
      doubleBounceRecipient: d.double_bounce_recipient ?? `postmaster@${config.domains[0] ?? config.hostname}`,
    },
  });
  const services: SmtpServices = {
    checkRecipient: createRecipientPolicy({ store, domains, delimiters, virtual, lookup }),
    checkSender: createSenderPolicy({ store, delimiters, recursionLimit: d.virtual_alias_recursion_limit }),
    authenticate: createAuthenticator(store),
    commit,
    // ETRN (RFC 1985): a relay domain's queued mail becomes due now
    flushDomain: async (domain, { subdomains, client }) => {
      if (!domains.isRelay(domain)) return null;
      const ids = await store.queue.flushDomain(domain, clock.now(), { subdomains });
      if (ids.length > 0) {
        const actor = `smtp ${client.address}${client.authUser ? ` (${client.authUser})` : ''}`;
        await store.queue.recordAdmin({ at: clock.now(), actor, action: 'etrn', target: `${subdomains ? '@' : ''}${domain}`, detail: `${ids.length} entries due now` });
        scheduler.kick();
      }
      return ids.length;
    },
  };
  const lmtpServices = createLmtpServices({ store, domains, delimiters, local, commit, clock, logger, lookup });
  const close = async (): Promise<void> => {
    await maps.close(); // stops watching store tables
    await remote.agent.close();
  };
  return { services, lmtpServices, scheduler, trusted, reloadMaps: () => maps.reload(), close };
}
