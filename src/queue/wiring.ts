/*
 * The queue half of the receiving path, wired once for `cartero serve` (src/cli/serve-mail.ts) and for
 * the tests (testing.ts): the commit that expands aliases and kicks the scheduler, and the scheduler
 * with the local delivery agent. Builds objects only; nothing runs until scheduler.start().
 */
import { createLocalAgent } from '../delivery/local.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryAgent } from './agent.js';
import type { LocalDomains } from '../policy/domains.js';
import type { Clock, Store } from '../store/index.js';
import type { BackoffSettings } from './backoff.js';
import { createCommit, type CommitFn } from './commit.js';
import { localDomainRouter, QueueScheduler } from './scheduler.js';

export interface QueueWiring {
  store: Store;
  logger: Logger;
  clock: Clock;
  domains: LocalDomains;
  delimiters: string;
  /** lease owner name, e.g. "<hostname>:<pid>" */
  owner: string;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  backoff: BackoffSettings;
  recursionLimit: number;
  expansionLimit: number;
}

export function wireQueue(w: QueueWiring): { commit: CommitFn; scheduler: QueueScheduler; local: DeliveryAgent } {
  const { store, logger, clock, domains, delimiters } = w;
  const local = createLocalAgent({ store, delimiters });
  const scheduler = new QueueScheduler({
    store,
    logger,
    clock,
    router: localDomainRouter(domains),
    local,
    owner: w.owner,
    concurrency: w.concurrency,
    leaseMs: w.leaseMs,
    pollIntervalMs: w.pollIntervalMs,
    backoff: w.backoff,
  });
  const commit = createCommit({
    store,
    domains,
    delimiters,
    recursionLimit: w.recursionLimit,
    expansionLimit: w.expansionLimit,
    clock,
    logger,
    onCommitted: () => scheduler.kick(),
  });
  return { commit, scheduler, local };
}
