/*
 * Turns the outcomes of one delivery round into the notifications the envelope sender asked for
 * (RFC 3461 NOTIFY): a failure report for failed recipients, a delay warning once a message has waited
 * delay_warning_time, a success report for NOTIFY=SUCCESS recipients delivered here or relayed to a
 * next hop without DSN. Each report is queued through the same commit path as received mail (so a local
 * sender gets it in its mailbox and a remote one through routing). Never bounces a bounce: a failed
 * null-sender message gets a log line, except one of our own notices, which is reported once to the
 * postmaster (Postfix's double bounce); a failed postmaster copy is only logged, so nothing loops.
 * Null-sender entries live bounce_queue_lifetime (noticeBackoff). Commit errors propagate: the caller
 * decides whether to retry the round.
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
  /**
   * Postfix's 2bounce_notice_recipient, e.g. "postmaster@<first domain>": where one of our notices that
   * could not be delivered is reported, once. Absent or null: such a failure is only logged.
   */
  doubleBounceRecipient?: string | null;
  /** Postfix's bounce_queue_lifetime in ms: how long null-sender entries are retried (backoffFor); default: the backoff's lifetime */
  bounceLifetimeMs?: number | null;
}

/** True for a notice this system generated (queued by a notifier: null sender, protocol "dsn"). */
export function isOwnNotice(entry: Pick<QueueEntry, 'sender' | 'meta'>): boolean {
  return entry.sender === '' && entry.meta.protocol === 'dsn' && typeof entry.meta.dsn === 'string';
}

/**
 * The backoff for one entry: a null-sender message (a bounce, ours or relayed) is given up after
 * bounce_queue_lifetime instead of maximal_queue_lifetime, as in Postfix. Pure.
 */
export function noticeBackoff(entry: Pick<QueueEntry, 'sender'>, backoff: BackoffSettings, bounceLifetimeMs: number | null | undefined): BackoffSettings {
  if (entry.sender !== '' || bounceLifetimeMs === null || bounceLifetimeMs === undefined || bounceLifetimeMs <= 0) return backoff;
  return { ...backoff, lifetimeMs: bounceLifetimeMs };
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
  /** The backoff the scheduler should apply to `entry` (noticeBackoff with this notifier's bounce lifetime). */
  backoffFor?(entry: QueueEntry, base: BackoffSettings): BackoffSettings;
}

export function createDsnNotifier(o: DsnNotifierOptions): DsnNotifier {
  /** Our own notice failed: one postmaster copy (never for a postmaster copy), else a log line. */
  async function doubleBounce(entry: QueueEntry, failed: DsnRecipient[], content: () => Promise<Buffer>, now: number): Promise<string[]> {
    const to = o.doubleBounceRecipient ?? null;
    if (!isOwnNotice(entry) || entry.meta.postmaster_copy === true || to === null || to === '') {
      const why = entry.meta.postmaster_copy === true ? 'undeliverable postmaster copy discarded' : 'not sent (null sender: never bounce a bounce)';
      o.logger.warn({ queue_id: entry.id, sender: '', failed: failed.length }, `${entry.id}: ${LOG_WORDS.failure} ${why}`);
      return [];
    }
    let original: Buffer | undefined;
    try {
      original = await content();
    } catch (err) {
      o.logger.warn({ err, queue_id: entry.id }, `${entry.id}: notice unreadable; the postmaster copy goes without it`);
    }
    const dsn = buildDsn({
      entry,
      recipients: failed,
      reportingMta: o.hostname,
      now,
      kind: 'failure',
      to,
      postmasterCopy: true,
      ...(original ? { returnContent: original } : {}),
      ...(o.returnLimit !== undefined ? { returnLimit: o.returnLimit } : {}),
    });
    if (!dsn) return [];
    const { queueId } = await o.commit(
      { sender: '', recipients: [{ address: to, notify: ['NEVER'] }], meta: { ...dsn.meta, client: 'local', protocol: 'dsn', postmaster_copy: true } },
      dsn.content,
    );
    o.logger.warn({ queue_id: entry.id, dsn_queue_id: queueId, recipient: to }, `${entry.id}: undeliverable notification reported to <${to}>: ${queueId}`);
    return [queueId];
  }

  return {
    backoffFor: (entry, base) => noticeBackoff(entry, base, o.bounceLifetimeMs),
    async notify(entry, results, content, now) {
      if (entry.sender === '') {
        // NOTIFY does not apply (our notices carry NEVER so no third party gets them): a failure is reported once or logged
        const failed = nullSenderFailures(entry, results, now);
        return failed.length > 0 ? doubleBounce(entry, failed, content, now) : [];
      }
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

/** The failed recipients of a null-sender entry's round, as report lines. */
function nullSenderFailures(entry: QueueEntry, results: readonly NoticeResult[], now: number): DsnRecipient[] {
  const byId = new Map(entry.recipients.map((r) => [r.id, r]));
  const origTo = originalRecipients(readExpansion(entry.meta));
  const out: DsnRecipient[] = [];
  for (const res of results) {
    const r = byId.get(res.recipientId);
    if (!r || res.outcome !== 'failed') continue;
    out.push({ address: r.address, orcpt: r.orcpt, original: origTo.get(r.address) ?? null, action: 'failed', reason: res.reason ?? r.lastError ?? 'unknown', remoteMta: res.remoteMta ?? null, lastAttempt: now });
  }
  return out;
}
