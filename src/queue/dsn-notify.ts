/*
 * Turns the outcomes of one delivery round into the notifications the envelope sender asked for
 * (RFC 3461 NOTIFY): a failure report for failed recipients, a delay warning once a message has waited
 * delay_warning_time, a success report for NOTIFY=SUCCESS recipients delivered here or relayed to a
 * next hop without DSN. Each report is queued through the same commit path as received mail (so a local
 * sender gets it in its mailbox and a remote one through routing). Never bounces a bounce: a null
 * sender only gets a log line. Commit errors propagate: the caller decides whether to retry the round.
 */
import type { Logger } from '../log/logger.js';
import type { QueueEntry } from '../store/index.js';
import type { BackoffSettings } from './backoff.js';
import type { CommitFn } from './commit.js';
import { buildDsn, type DsnAction, type DsnKind, type DsnRecipient } from './dsn.js';
import { originalRecipients, readExpansion } from './meta.js';

/** One recipient's result in a round: the queue's RecipientOutcome plus how a delivered one left. */
export interface NoticeResult {
  recipientId: number;
  outcome: 'done' | 'failed' | 'deferred';
  reason?: string;
  /**
   * For `done`: `mailbox` (delivered here, the default), `relayed` (to a next hop that does not do DSN:
   * we report success), `dsn-peer` (the next hop took NOTIFY over: we send nothing).
   */
  handoff?: 'mailbox' | 'relayed' | 'dsn-peer';
  /** the host that gave the reply in `reason` */
  remoteMta?: string;
}

export interface DsnNotifierOptions {
  commit: CommitFn;
  logger: Logger;
  /** our host name (Reporting-MTA, MAILER-DAEMON@…) */
  hostname: string;
  /** Postfix's bounce_size_limit; default 50000 */
  returnLimit?: number;
  /** Postfix's delay_warning_time in ms; null or 0: no delay warnings (the default) */
  delayWarningMs?: number | null;
  /** the scheduler's backoff (the delay warning window and Will-Retry-Until) */
  backoff: BackoffSettings;
}

/** Whether a recipient's NOTIFY asks for this kind of notice (RFC 3461 §4.1; none given = FAILURE,DELAY). */
export function wantsNotice(notify: readonly string[] | null | undefined, kind: DsnKind): boolean {
  const words = (notify ?? []).map((w) => w.toUpperCase());
  if (words.includes('NEVER')) return false;
  if (words.length === 0) return kind !== 'success';
  return words.includes(kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS');
}

/**
 * True for the one scheduled attempt that first finds the message older than `delayMs`. Attempts are
 * spaced by the backoff (wait = clamp(age)), so exactly one falls in [delay, delay + clamp(delay)):
 * stateless, at the cost of a repeat when an operator flush lands a second attempt in the window.
 */
export function delayWarningDue(receivedAt: number, now: number, delayMs: number, backoff: BackoffSettings): boolean {
  if (delayMs <= 0) return false;
  const age = now - receivedAt;
  const window = Math.min(Math.max(delayMs, backoff.minimalMs), backoff.maximalMs);
  return age >= delayMs && age < delayMs + window && age < backoff.lifetimeMs;
}

const LOG_WORDS: Record<DsnKind, string> = {
  failure: 'sender non-delivery notification',
  delay: 'sender delay notification',
  success: 'sender delivery status notification',
};

export interface DsnNotifier {
  /**
   * Queues the notices due for `results` of `entry` (the entry as leased: recipients still pending).
   * `content` loads the original message (only called when a notice is sent). Returns the queue ids.
   */
  notify(entry: QueueEntry, results: readonly NoticeResult[], content: () => Promise<Buffer>, now: number): Promise<string[]>;
}

export function createDsnNotifier(o: DsnNotifierOptions): DsnNotifier {
  return {
    async notify(entry, results, content, now) {
      const byId = new Map(entry.recipients.map((r) => [r.id, r]));
      const origTo = originalRecipients(readExpansion(entry.meta));
      const picked: Record<DsnKind, DsnRecipient[]> = { failure: [], delay: [], success: [] };
      const suppressed: string[] = [];
      const delayDue = !!o.delayWarningMs && delayWarningDue(entry.receivedAt, now, o.delayWarningMs, o.backoff);
      for (const res of results) {
        const r = byId.get(res.recipientId);
        if (!r) continue;
        let kind: DsnKind;
        let action: DsnAction;
        if (res.outcome === 'failed') [kind, action] = ['failure', 'failed'];
        else if (res.outcome === 'deferred' && delayDue) [kind, action] = ['delay', 'delayed'];
        else if (res.outcome === 'done' && res.handoff !== 'dsn-peer') [kind, action] = ['success', res.handoff === 'relayed' ? 'relayed' : 'delivered'];
        else continue;
        if (!wantsNotice(r.notify, kind)) {
          if (kind === 'failure') suppressed.push(r.address);
          continue;
        }
        const reason = res.reason ?? (action === 'delivered' ? 'delivered to mailbox' : action === 'relayed' ? 'relayed' : r.lastError ?? 'unknown');
        picked[kind].push({
          address: r.address,
          orcpt: r.orcpt,
          original: origTo.get(r.address) ?? null,
          action,
          reason,
          remoteMta: res.remoteMta ?? null,
          lastAttempt: now,
        });
      }
      if (suppressed.length > 0) {
        o.logger.info({ queue_id: entry.id, recipients: suppressed }, `${entry.id}: no non-delivery notification for ${suppressed.join(', ')} (NOTIFY=NEVER)`);
      }
      const kinds = (['failure', 'delay', 'success'] as const).filter((k) => picked[k].length > 0);
      if (kinds.length === 0) return [];
      if (entry.sender === '') {
        if (picked.failure.length > 0) {
          o.logger.warn(
            { queue_id: entry.id, sender: '', failed: picked.failure.length },
            `${entry.id}: ${LOG_WORDS.failure} not sent (null sender: never bounce a bounce)`,
          );
        }
        return [];
      }
      let original: Buffer | undefined;
      try {
        original = await content();
      } catch (err) {
        o.logger.warn({ err, queue_id: entry.id }, `${entry.id}: original message unreadable; notices go without it`);
      }
      const ids: string[] = [];
      for (const kind of kinds) {
        const dsn = buildDsn({
          entry,
          recipients: picked[kind],
          reportingMta: o.hostname,
          now,
          kind,
          ...(original ? { returnContent: original } : {}),
          ...(o.returnLimit !== undefined ? { returnLimit: o.returnLimit } : {}),
          ...(kind === 'delay' ? { retryUntil: entry.receivedAt + o.backoff.lifetimeMs } : {}),
        });
        if (!dsn) continue;
        const { queueId } = await o.commit(
          { sender: '', recipients: dsn.recipients.map((address) => ({ address, notify: ['NEVER'] })), meta: { ...dsn.meta, client: 'local', protocol: 'dsn' } },
          dsn.content,
        );
        o.logger.info(
          { queue_id: entry.id, dsn_queue_id: queueId, sender: entry.sender, kind },
          `${entry.id}: ${LOG_WORDS[kind]}: ${queueId}`,
        );
        ids.push(queueId);
      }
      return ids;
    },
  };
}
