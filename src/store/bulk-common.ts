/*
 * Checks shared by both backends' bulk writes (BulkStore in api.ts): the rows come from another store,
 * possibly an old or damaged one, so every number and state is checked before SQL sees it. Pure: values
 * in, normalised values or StoreError `invalid` out, no I/O.
 */
import type { BulkMailbox, BulkMessage, BulkQueueEntry, RecipientState } from './api.js';
import { normalizeFlags, sha256 } from './common.js';
import { StoreError } from './errors.js';

const MAX_UID_VALIDITY = 0xffffffff;
const RECIPIENT_STATES: ReadonlySet<RecipientState> = new Set(['pending', 'done', 'failed']);

function positive(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new StoreError('invalid', `${what}: expected a whole number from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

function time(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new StoreError('invalid', `${what}: expected a time in ms, got ${String(value)}`);
  return value;
}

export function checkBulkMailbox(m: BulkMailbox): BulkMailbox {
  if (typeof m.name !== 'string' || m.name.length === 0 || m.name.includes('\0')) throw new StoreError('invalid', `invalid mailbox name ${JSON.stringify(m.name)}`);
  const where = `mailbox ${m.name}`;
  positive(m.uidValidity, `${where}: UIDVALIDITY`, MAX_UID_VALIDITY);
  positive(m.uidNext, `${where}: UIDNEXT`);
  positive(m.highestModseq, `${where}: HIGHESTMODSEQ`);
  const seen = new Set<number>();
  for (const e of m.expunged) {
    positive(e.uid, `${where}: expunged UID`, m.uidNext - 1);
    positive(e.modseq, `${where}: MODSEQ of expunged UID ${e.uid}`, m.highestModseq);
    if (seen.has(e.uid)) throw new StoreError('invalid', `${where}: UID ${e.uid} expunged twice`);
    seen.add(e.uid);
  }
  return m;
}

/** The bytes of an imported message that are its blob's: the content after its prefix. */
export function blobPart(m: { content: Buffer; prefix?: Uint8Array | null }): Buffer {
  return m.content.subarray(m.prefix?.length ?? 0);
}

/** Checks one message against its mailbox's UIDNEXT and HIGHESTMODSEQ; returns its normalised flags. */
export function checkBulkMessage(m: BulkMessage & { content: Buffer }, box: { uidNext: number; highestModseq: number }): string[] {
  positive(m.uid, 'message UID', box.uidNext - 1);
  const where = `message UID ${m.uid}`;
  positive(m.modseq, `${where}: MODSEQ`, box.highestModseq);
  positive(m.createdModseq, `${where}: MODSEQ of its append`, m.modseq);
  time(m.internalDate, `${where}: internal date`);
  if (!Buffer.isBuffer(m.content)) throw new StoreError('invalid', `${where}: no content`);
  if (m.size !== m.content.length) throw new StoreError('invalid', `${where}: size ${m.size} but ${m.content.length} bytes of content`);
  const prefix = m.prefix ?? null;
  if (prefix !== null && !m.content.subarray(0, prefix.length).equals(prefix)) throw new StoreError('invalid', `${where}: content does not begin with its prefix`);
  if (sha256(blobPart(m)) !== m.blobId) throw new StoreError('invalid', `${where}: content does not match blob ${m.blobId}`);
  if (m.idempotencyKey !== null && (typeof m.idempotencyKey !== 'string' || m.idempotencyKey.length === 0)) {
    throw new StoreError('invalid', `${where}: empty idempotency key`);
  }
  return normalizeFlags(m.flags);
}

/** Checks a whole batch: each message, and no UID twice. */
export function checkBulkMessages(messages: readonly (BulkMessage & { content: Buffer })[], box: { uidNext: number; highestModseq: number }): string[][] {
  const uids = new Set<number>();
  return messages.map((m) => {
    const flags = checkBulkMessage(m, box);
    if (uids.has(m.uid)) throw new StoreError('invalid', `message UID ${m.uid} twice in one import`);
    uids.add(m.uid);
    return flags;
  });
}

export function checkBulkQueueEntry(e: BulkQueueEntry): BulkQueueEntry {
  if (typeof e.id !== 'string' || !/^[0-9A-Za-z]{1,64}$/.test(e.id)) throw new StoreError('invalid', `invalid queue id ${JSON.stringify(e.id)}`);
  const where = `queue entry ${e.id}`;
  if (typeof e.sender !== 'string') throw new StoreError('invalid', `${where}: no sender`);
  if (e.state !== 'active' && e.state !== 'held') throw new StoreError('invalid', `${where}: invalid state ${String(e.state)}`);
  time(e.receivedAt, `${where}: received time`);
  time(e.dueAt, `${where}: due time`);
  if (!Number.isSafeInteger(e.attempts) || e.attempts < 0) throw new StoreError('invalid', `${where}: invalid attempt count ${e.attempts}`);
  if (e.meta === null || typeof e.meta !== 'object' || Array.isArray(e.meta)) throw new StoreError('invalid', `${where}: meta must be an object`);
  if (e.recipients.length === 0) throw new StoreError('invalid', `${where}: no recipient`);
  for (const r of e.recipients) {
    if (typeof r.address !== 'string' || r.address.length === 0) throw new StoreError('invalid', `${where}: a recipient without an address`);
    if (!RECIPIENT_STATES.has(r.state)) throw new StoreError('invalid', `${where}: recipient ${r.address} has invalid state ${String(r.state)}`);
    if (!Number.isSafeInteger(r.attempts) || r.attempts < 0) throw new StoreError('invalid', `${where}: recipient ${r.address} has an invalid attempt count`);
  }
  return e;
}
