/*
 * The queue half of the mail path, wired once for `cartero serve` (src/cli/serve-mail.ts) and for the
 * tests (testing.ts): the commit that rewrites and expands addresses and kicks the scheduler, and the
 * scheduler with its router, the local and remote delivery agents and the DSN notifier. Builds objects only; nothing runs until scheduler.start().
 */
import { createLocalAgent } from '../delivery/local.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryAgent } from './agent.js';
import type { LocalDomains } from '../policy/domains.js';
import type { LocalLookup } from '../policy/lookup.js';
import type { Clock, QueueRecipientInput, Store } from '../store/index.js';
import type { BackoffSettings } from './backoff.js';
import type { VirtualAliasOptions } from '../routing/virtual.js';
import { createCommit, type CommitFn, type CommitRewriting } from './commit.js';
import { createDsnNotifier } from './dsn-notify.js';
import { FreshContent } from './fresh-content.js';
import { localDomainRouter, QueueScheduler, type BatchAgent, type Router, type SchedulerOptions } from './scheduler.js';

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
  /** transport selection; default: local domains local, the rest by MX */
  router?: Router;
  /** the SMTP/LMTP client agent; without it remote recipients are deferred */
  remote?: BatchAgent | null;
  onRemoteTransport?: SchedulerOptions['onRemoteTransport'];
  virtual?: VirtualAliasOptions | null;
  /** the directory lookup shared with the RCPT check */
  lookup?: LocalLookup | null;
  rewriting?: CommitRewriting | null;
  /** false: local recipients are always queued for the scheduler, never filed by the commit */
  fileAtCommit?: boolean;
  /** delivery.duplicate_suppression_window in ms (LocalAgentOptions.duplicateWindowMs); default 0, off */
  duplicateWindowMs?: number;
  /** bounces and other DSNs; absent: failures are only logged */
  dsn?: { hostname: string; delayWarningMs: number; returnLimit: number; bounceLifetimeMs: number; doubleBounceRecipient: string } | null;
}

export function wireQueue(w: QueueWiring): { commit: CommitFn; scheduler: QueueScheduler; local: DeliveryAgent } {
  const { store, logger, clock, domains, delimiters } = w;
  const local = createLocalAgent({ store, delimiters, duplicateWindowMs: w.duplicateWindowMs ?? 0 });
  const router = w.router ?? localDomainRouter(domains);
  // the notifier queues DSNs through the commit made below
  let commitLater: CommitFn = () => Promise.reject(new Error('commit not ready'));
  const notifier = w.dsn
    ? createDsnNotifier({ commit: (e, c) => commitLater(e, c), logger, hostname: w.dsn.hostname, backoff: w.backoff, delayWarningMs: w.dsn.delayWarningMs, returnLimit: w.dsn.returnLimit, bounceLifetimeMs: w.dsn.bounceLifetimeMs, doubleBounceRecipient: w.dsn.doubleBounceRecipient })
    : null;
  const fresh = new FreshContent(clock);
  const scheduler = new QueueScheduler({
    store,
    logger,
    clock,
    fresh,
    router,
    local,
    remote: w.remote ?? null,
    notifier,
    ...(w.onRemoteTransport ? { onRemoteTransport: w.onRemoteTransport } : {}),
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
    onCommitted: (id, content) => {
      fresh.offer(id, content);
      scheduler.kick();
    },
    virtual: w.virtual ?? null,
    lookup: w.lookup ?? null,
    rewriting: w.rewriting ?? null,
    // a recipient routed to the local agent is filed by the commit itself, as the agent would file it
    // (where the store files at all: otherwise nothing is prepared for it)
    ...(w.fileAtCommit === false || !store.queue.filesAtCommit
      ? {}
      : {
          fileAtCommit: async (r: QueueRecipientInput, sender: string, content: Buffer, now: number) =>
            (await router(r.address)).kind === 'local' ? local.fileAtCommit(r.address, sender, content, now) : null,
        }),
  });
  commitLater = commit;
  return { commit, scheduler, local };
}
