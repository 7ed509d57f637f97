/*
 * The delivery log line, in the spirit of Postfix's: one per recipient and attempt, whoever delivered
 * (the scheduler, the queue commit filing a local recipient, an LMTP listener), so that statistics
 * built from the log see every delivery the same way.
 */
import type { Logger } from '../log/logger.js';

export type DeliveryStatus = 'sent' | 'bounced' | 'deferred';

export function statusOf(outcome: 'done' | 'failed' | 'deferred'): DeliveryStatus {
  return outcome === 'done' ? 'sent' : outcome === 'failed' ? 'bounced' : 'deferred';
}

export interface DeliveryRecord {
  queueId: string;
  /** the envelope sender, for deliveries logged without a queued line before them (LMTP) */
  sender?: string;
  recipient: string;
  /** the address the client gave, when expansion turned it into `recipient` */
  origTo?: string | null;
  relay: string;
  /** delay = now - since, in seconds with two decimals */
  since: number;
  now: number;
  status: DeliveryStatus;
  reason: string;
}

export function logDelivery(logger: Logger, d: DeliveryRecord): void {
  const delay = Math.round((d.now - d.since) / 10) / 100;
  const orig = d.origTo ? `, orig_to=<${d.origTo}>` : '';
  logger.info(
    {
      queue_id: d.queueId,
      ...(d.sender !== undefined ? { sender: d.sender } : {}),
      recipient: d.recipient,
      orig_to: d.origTo ?? undefined,
      relay: d.relay,
      delay,
      status: d.status,
      reason: d.reason,
    },
    `${d.queueId}: to=<${d.recipient}>${orig}, relay=${d.relay}, delay=${delay}, status=${d.status} (${d.reason})`,
  );
}
