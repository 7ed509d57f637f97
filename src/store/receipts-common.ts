/*
 * The part of a queue commit with receipts that both backends share (docs/xqueueid.md): which queue
 * recipients survive once the receipts that already existed are known. Pure. The backends own the
 * atomic part: inserting the new receipts and the entry in one transaction, the unique key deciding
 * between two concurrent identical commits.
 */
import type { QueueReceiptInput, QueueRecipientInput } from './api.js';
import { StoreError } from './errors.js';

/** Receipt keys are hex digests (src/queue/receipts.ts); anything else is a caller's bug. */
const KEY = /^[0-9a-f]{16,128}$/;

export function checkReceipts(receipts: readonly QueueReceiptInput[], recipients: readonly QueueRecipientInput[]): void {
  const known = new Set(recipients.map((r) => r.address));
  const keys = new Set<string>();
  for (const r of receipts) {
    if (!KEY.test(r.key)) throw new StoreError('invalid', `bad receipt key ${JSON.stringify(r.key.slice(0, 80))}`);
    if (keys.has(r.key)) throw new StoreError('invalid', `receipt key ${r.key} given twice`);
    keys.add(r.key);
    if (r.addresses.length === 0) throw new StoreError('invalid', `receipt ${r.key} names no recipient`);
    const stray = r.addresses.find((a) => !known.has(a));
    if (stray !== undefined) throw new StoreError('invalid', `receipt ${r.key} names ${stray}, not a recipient of the entry`);
  }
}

export interface Kept {
  recipients: QueueRecipientInput[];
  /** recipients left out: every receipt naming them already existed */
  left: string[];
}

/**
 * A recipient stays when a new receipt names it or no receipt does (a caller that keys only some
 * recipients keeps the others as before); it goes when only existing receipts name it.
 */
export function keptRecipients(receipts: readonly QueueReceiptInput[], recipients: readonly QueueRecipientInput[], existing: ReadonlySet<string>): Kept {
  const fresh = new Set<string>();
  const covered = new Set<string>();
  for (const r of receipts) {
    for (const a of r.addresses) {
      covered.add(a);
      if (!existing.has(r.key)) fresh.add(a);
    }
  }
  const kept: QueueRecipientInput[] = [];
  const left: string[] = [];
  for (const r of recipients) {
    if (fresh.has(r.address) || !covered.has(r.address)) kept.push(r);
    else left.push(r.address);
  }
  return { recipients: kept, left };
}
