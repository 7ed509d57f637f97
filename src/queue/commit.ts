/*
 * SmtpServices.commit: expands the recipients once (expand.ts), records the expansion in the envelope
 * meta, and makes the message durable through store.queue.commit before resolving — the only path to a
 * 250. Logs one line per queued message and wakes the scheduler. Never delivers; any store error
 * propagates unchanged so the session answers 451 4.3.0 with nothing half-queued.
 */
import type { Logger } from '../log/logger.js';
import type { Envelope } from '../smtp/services.js';
import type { Clock } from '../store/index.js';
import { expandRecipients, type ExpandOptions } from './expand.js';

export interface CommitOptions extends ExpandOptions {
  clock: Clock;
  logger: Logger;
  /** called after each successful commit (the scheduler's kick) */
  onCommitted?: (queueId: string) => void;
}

export type CommitFn = (envelope: Envelope, content: Buffer) => Promise<{ queueId: string }>;

/** The client for the log line, from whatever form the session put in meta.client. */
function clientOf(meta: Record<string, unknown>): string | undefined {
  const c = meta.client;
  if (typeof c === 'string') return c;
  if (typeof c === 'object' && c !== null && 'address' in c && typeof c.address === 'string') return c.address;
  return undefined;
}

export function createCommit(options: CommitOptions): CommitFn {
  const { store, clock, logger } = options;
  return async (envelope, content) => {
    const expansion = await expandRecipients(envelope.recipients, options);
    const meta: Record<string, unknown> = { ...envelope.meta };
    if (Object.keys(expansion.expanded).length > 0) meta.expanded = expansion.expanded;
    if (Object.keys(expansion.undeliverable).length > 0) meta.undeliverable = expansion.undeliverable;
    const { id } = await store.queue.commit(
      { sender: envelope.sender, recipients: expansion.recipients, content, meta },
      clock.now(),
    );
    const nrcpt = expansion.recipients.length;
    logger.info(
      { queue_id: id, sender: envelope.sender, nrcpt, size: content.length, client: clientOf(envelope.meta) },
      `${id}: from=<${envelope.sender}>, size=${content.length}, nrcpt=${nrcpt} (queue active)`,
    );
    options.onCommitted?.(id);
    return { queueId: id };
  };
}
