/*
 * SmtpServices.commit: rewrites the addresses once (routing/rewrite.ts: canonical maps, masquerading;
 * header addresses only for the clients allowed), expands the recipients once (expand.ts: virtual alias
 * maps, then the directory), records both in the envelope meta, and makes the message durable through
 * store.queue.commit before resolving — the only path to a 250. Logs one line per queued message and
 * wakes the scheduler. Local recipients the caller can resolve (fileAtCommit: their INBOX, our trace
 * headers) the store files in the same transaction, so they need no lease, delivery or completion
 * later; everything else is queued. Any store or table error propagates unchanged so the session
 * answers 451 4.3.0 with nothing half-queued.
 * A client that named its queue entry (XQUEUEID, docs/xqueueid.md) gets receipts in the same store
 * transaction: recipients it already handed us with these bytes are left out, and a resend of nothing
 * new queues nothing and answers with the first entry's id (logged as a resend).
 */
import type { Logger } from '../log/logger.js';
import type { AddressRewriter, HeaderChange } from '../routing/rewrite.js';
import type { Envelope, EnvelopeRecipient } from '../smtp/services.js';
import type { Clock, FileAtCommit, QueueRecipientInput } from '../store/index.js';
import { expandRecipients, withLookup, type ExpandOptions } from './expand.js';
import { logDelivery } from './delivery-log.js';
import { clientQueueId, receiptsFor } from './receipts.js';

export interface CommitOptions extends ExpandOptions {
  clock: Clock;
  logger: Logger;
  /** called after each commit that queued something, with the bytes stored (the scheduler's kick) */
  onCommitted?: (queueId: string, content: Buffer) => void;
  /** canonical maps and masquerading; absent or null: addresses are committed as received */
  rewriting?: CommitRewriting | null;
  /**
   * A final recipient the commit may file into its mailbox itself (NewQueueMessage.file), or null to
   * queue it for the scheduler. Absent: every recipient is queued.
   */
  fileAtCommit?: (recipient: QueueRecipientInput, sender: string, content: Buffer, now: number) => Promise<FileAtCommit | null>;
}

export interface CommitRewriting {
  rewriter: AddressRewriter;
  /** whether this message's header addresses may be rewritten (local_header_rewrite_clients) */
  headersFor(meta: Record<string, unknown>): boolean;
}

/** What commit-time rewriting changed, kept as meta.rewritten and logged. */
export interface RewriteRecord {
  sender?: { from: string; to: string };
  /** original envelope recipient → rewritten address */
  recipients?: Record<string, string>;
  /** header addresses changed (at most MAX_RECORDED_HEADER_CHANGES) */
  headers?: HeaderChange[];
}

const MAX_RECORDED_HEADER_CHANGES = 50;

interface Rewritten {
  sender: string;
  recipients: EnvelopeRecipient[];
  content: Buffer;
  record: RewriteRecord;
}

async function rewrite(envelope: Envelope, content: Buffer, r: CommitRewriting): Promise<Rewritten> {
  const record: RewriteRecord = {};
  const sender = await r.rewriter.rewriteSender(envelope.sender);
  if (sender !== envelope.sender) record.sender = { from: envelope.sender, to: sender };
  const recipients: EnvelopeRecipient[] = [];
  for (const rcpt of envelope.recipients) {
    const address = await r.rewriter.rewriteRecipient(rcpt.address);
    if (address === rcpt.address) {
      recipients.push(rcpt);
      continue;
    }
    (record.recipients ??= {})[rcpt.address] = address;
    // RFC 3461: the original recipient is the address the client gave, before any rewriting.
    recipients.push({ ...rcpt, address, orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}` });
  }
  let out = content;
  if (r.headersFor(envelope.meta)) {
    const headers = await r.rewriter.rewriteHeaders(content);
    out = headers.content;
    if (headers.changes.length > 0) record.headers = headers.changes.slice(0, MAX_RECORDED_HEADER_CHANGES);
  }
  return { sender, recipients, content: out, record };
}

/** Keys the expansion by the address the client gave when canonical maps changed it first. */
function rekeyExpanded(expanded: Record<string, string[]>, rewritten: Record<string, string> | undefined, given: Set<string>): void {
  if (!rewritten) return;
  for (const [orig, now] of Object.entries(rewritten)) {
    expanded[orig] = expanded[now] ?? [now];
    if (!given.has(now)) delete expanded[now];
  }
}

export type CommitFn = (envelope: Envelope, content: Buffer) => Promise<{ queueId: string }>;

/** The client for the log line, from whatever form the session put in meta.client. */
function clientOf(meta: Record<string, unknown>): string | undefined {
  const c = meta.client;
  if (typeof c === 'string') return c;
  if (typeof c === 'object' && c !== null && 'address' in c && typeof c.address === 'string') return c.address;
  return undefined;
}

export function createCommit(commitOptions: CommitOptions): CommitFn {
  const options = withLookup(commitOptions);
  const { store, clock, logger } = options;
  return async (envelope, received) => {
    const rw = options.rewriting ? await rewrite(envelope, received, options.rewriting) : null;
    const sender = rw?.sender ?? envelope.sender;
    const content = rw?.content ?? received;
    const expansion = await expandRecipients(rw?.recipients ?? envelope.recipients, options);
    rekeyExpanded(expansion.expanded, rw?.record.recipients, new Set(envelope.recipients.map((r) => r.address)));
    const meta: Record<string, unknown> = { ...envelope.meta };
    if (Object.keys(expansion.expanded).length > 0) meta.expanded = expansion.expanded;
    if (Object.keys(expansion.undeliverable).length > 0) meta.undeliverable = expansion.undeliverable;
    const rewritten = rw && Object.keys(rw.record).length > 0 ? rw.record : undefined;
    if (rewritten) meta.rewritten = rewritten;
    const finals = (given: string): string[] => expansion.expanded[given] ?? [rw?.record.recipients?.[given] ?? given];
    const receipts = receiptsFor(envelope, received, expansion.recipients, finals);
    const committedAt = clock.now();
    const file = options.fileAtCommit ? await filesFor(options.fileAtCommit, expansion.recipients, sender, content, committedAt) : [];
    const result = await store.queue.commit(
      { sender, recipients: expansion.recipients, content, meta, ...(receipts ? { receipts } : {}), ...(file.length > 0 ? { file } : {}) },
      committedAt,
    );
    const { id } = result;
    if (result.duplicates) logResend(logger, envelope, sender, result.created ? id : null, result.duplicates);
    if (!result.created) return { queueId: id };
    const left = new Set(result.duplicates?.addresses ?? []);
    const nrcpt = expansion.recipients.filter((r) => !left.has(r.address)).length;
    logger.info(
      {
        queue_id: id,
        sender,
        nrcpt,
        size: content.length,
        client: clientOf(envelope.meta),
        ...(meta.expanded ? { expanded: meta.expanded } : {}),
        ...(meta.undeliverable ? { undeliverable: meta.undeliverable } : {}),
        ...(rewritten ? { rewritten } : {}),
      },
      `${id}: from=<${sender}>, size=${content.length}, nrcpt=${nrcpt} (queue active)`,
    );
    const filed = result.filed ?? [];
    if (filed.length > 0) logFiled(logger, id, filed, expansion.expanded, committedAt, clock.now());
    if (filed.length < nrcpt) options.onCommitted?.(id, content);
    return { queueId: id };
  };
}

/**
 * At most this many recipients are filed by one commit: each is an append in the store writer's
 * transaction, which every other session's 250 waits behind; the rest of a long list is delivered by
 * the scheduler, a few at a time.
 */
const FILE_AT_COMMIT_MAX = 50;

/** The recipients a commit may file itself: local ones (the caller's judgement) that asked for no success DSN. */
async function filesFor(
  fileAtCommit: NonNullable<CommitOptions['fileAtCommit']>,
  recipients: readonly QueueRecipientInput[],
  sender: string,
  content: Buffer,
  now: number,
): Promise<FileAtCommit[]> {
  // a success DSN is the scheduler's (dsn-notify.ts): those recipients go through the queue
  const candidates = recipients.filter((r) => !(r.notify ?? []).some((n) => n.toUpperCase() === 'SUCCESS')).slice(0, FILE_AT_COMMIT_MAX);
  // a lookup that fails leaves the recipient to the scheduler, which retries it
  const found = await Promise.all(candidates.map((r) => fileAtCommit(r, sender, content, now).catch(() => null)));
  return found.filter((f): f is FileAtCommit => f !== null);
}

/** The delivery line for each recipient the commit filed, naming the address the client gave. */
function logFiled(logger: Logger, id: string, filed: readonly string[], expanded: Record<string, string[]>, since: number, now: number): void {
  const origOf = new Map<string, string>();
  for (const [given, finals] of Object.entries(expanded)) for (const f of finals) if (f !== given) origOf.set(f, given);
  for (const recipient of filed) {
    logDelivery(logger, { queueId: id, recipient, origTo: origOf.get(recipient) ?? null, relay: 'local', since, now, status: 'sent', reason: 'delivered to mailbox' });
  }
}

/** One line for the recipients a resend brought again (the client lost our 250, docs/xqueueid.md). */
function logResend(logger: Logger, envelope: Envelope, sender: string, id: string | null, dup: { addresses: string[]; of: string }): void {
  const client = clientOf(envelope.meta);
  const xqueueid = clientQueueId(envelope.meta);
  const to = dup.addresses.map((a) => `<${a}>`).join(',');
  logger.info(
    { queue_id: id ?? dup.of, client, sender, recipients: dup.addresses, client_queue_id: xqueueid, duplicate_of: dup.of, status: 'resent' },
    `${id ?? dup.of}: client=${client ?? 'unknown'}, client_queue_id=${xqueueid ?? ''}, from=<${sender}>, to=${to}, status=resent (duplicate of ${dup.of}${id ? ', other recipients queued' : ', nothing queued'})`,
  );
}
