/*
 * Receipt keys for exactly once across a hop (docs/xqueueid.md). A client that named its queue entry
 * (MAIL FROM:<..> XQUEUEID=<id>) and lost our 250 sends the same bytes again under the same id; the
 * queue commit leaves out every recipient whose key it has already recorded. The key is a hash of
 * (client queue id, sha256 of the client's bytes without the trace headers we put in front, recipient
 * as given in RCPT with its domain lowercased): scoping by the bytes means nobody can suppress someone
 * else's message by guessing its queue id. Pure, no I/O.
 */
import { createHash } from 'node:crypto';
import type { QueueReceiptInput, QueueRecipientInput } from '../store/index.js';
import { recipientKey } from '../policy/address.js';
import type { Envelope } from '../smtp/services.js';

/** Envelope meta the SMTP/LMTP session sets (src/smtp/session/message.ts): the client's queue id. */
export const XQUEUEID_META = 'xqueueid';
/** … and the octets of the trace headers it put in front of the client's bytes. */
export const TRACE_BYTES_META = 'trace_bytes';

/** sha256 (hex) of what the client sent: the content after our own trace headers. */
export function clientContentDigest(meta: Record<string, unknown>, content: Buffer): string {
  const trace = meta[TRACE_BYTES_META];
  const skip = typeof trace === 'number' && Number.isInteger(trace) && trace >= 0 && trace <= content.length ? trace : 0;
  return createHash('sha256').update(content.subarray(skip)).digest('hex');
}

/** The client's queue id when the envelope carries one (validated by the MAIL parser). */
export function clientQueueId(meta: Record<string, unknown>): string | null {
  const id = meta[XQUEUEID_META];
  return typeof id === 'string' && id !== '' ? id : null;
}

/** The key of one recipient's receipt. Fields are joined by NUL, which none of them can hold. */
export function receiptKey(queueId: string, contentDigest: string, recipient: string): string {
  return createHash('sha256').update(`${queueId}\0${contentDigest}\0${recipientKey(recipient)}`).digest('hex');
}

/**
 * One receipt per recipient the client gave, naming the queue recipients it became (`finals`: the given
 * address → the final addresses after rewriting and expansion). Null when the client named no queue id.
 * Given recipients that ended up with no queue recipient of their own (never the case today) get none.
 */
export function receiptsFor(envelope: Envelope, content: Buffer, queued: readonly QueueRecipientInput[], finals: (given: string) => string[]): QueueReceiptInput[] | null {
  const id = clientQueueId(envelope.meta);
  if (id === null) return null;
  const digest = clientContentDigest(envelope.meta, content);
  // matched without case: expansion may give an account's address in the directory's case
  const byKey = new Map<string, string[]>();
  for (const q of queued) {
    const k = q.address.toLowerCase();
    byKey.set(k, [...(byKey.get(k) ?? []), q.address]);
  }
  const out: QueueReceiptInput[] = [];
  const seen = new Set<string>();
  for (const r of envelope.recipients) {
    const key = receiptKey(id, digest, r.address);
    if (seen.has(key)) continue; // the same recipient twice in RCPT: one receipt
    seen.add(key);
    const addresses = [...new Set(finals(r.address).flatMap((f) => byKey.get(f.toLowerCase()) ?? []))];
    if (addresses.length > 0) out.push({ key, addresses });
  }
  return out;
}
