/*
 * Wires the receiving path for `cartero serve`: the SmtpServices the SMTP server calls (recipient
 * and sender policy, authentication, queue commit), those of LMTP listeners (final delivery), and the
 * queue scheduler with the local delivery agent. Builds objects only: it binds no port and starts nothing until scheduler.start().
 * Errors come from the parts it wires (store errors propagate to the SMTP session).
 */
import type { Config } from '../config/schema.js';
import { createAuthenticator } from '../auth/authenticate.js';
import type { Logger } from '../log/logger.js';
import { LocalDomains } from '../policy/domains.js';
import { createNetworkMatcher } from '../policy/mynetworks.js';
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
}

export function startMailServices(options: MailServicesOptions): MailServices {
  const { config, store, logger } = options;
  const clock = options.clock ?? systemClock;
  const d = config.delivery;
  const domains = new LocalDomains({ store, domains: config.domains, relayDomains: config.relay_domains, clock });
  const delimiters = d.recipient_delimiter;
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
    backoff: { minimalMs: d.minimal_backoff * 1000, maximalMs: d.maximal_backoff * 1000, lifetimeMs: d.maximal_queue_lifetime * 1000 },
    recursionLimit: d.virtual_alias_recursion_limit,
    expansionLimit: d.virtual_alias_expansion_limit,
  });
  const services: SmtpServices = {
    checkRecipient: createRecipientPolicy({ store, domains, delimiters }),
    checkSender: createSenderPolicy({ store, delimiters, recursionLimit: d.virtual_alias_recursion_limit }),
    authenticate: createAuthenticator(store),
    commit,
  };
  const lmtpServices = createLmtpServices({ store, domains, delimiters, local, commit, clock, logger });
  return { services, lmtpServices, scheduler, trusted: createNetworkMatcher(config.mynetworks) };
}
