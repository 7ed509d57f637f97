/*
 * Message bytes and structure for FETCH and SEARCH: the structure stored at delivery (src/mime via
 * store.messages.structures) is preferred; a message stored without one is parsed once per use. Loads
 * in batches, the bytes of a batch in one store call (messages.contents), so a FETCH or SEARCH of many
 * messages makes few store round trips, with a batch bounded in count and bytes; tolerates messages
 * expunged by another session meanwhile (they come back as null and are skipped).
 */
import { deserializeStructure, parseStructure } from '../mime/index.js';
import type { MessageStructure } from '../mime/types.js';
import { isStoreError, type Store, type UidRange } from '../store/index.js';

export interface LoadedMessage {
  content: Buffer | null;
  structure: MessageStructure | null;
}

type StructureRow = { uid: number; structure: string | null };
type WithStructures = { structures(mailboxId: number, uids?: UidRange[]): Promise<StructureRow[]> };

function hasStructures(m: unknown): m is WithStructures {
  return typeof (m as Partial<WithStructures>).structures === 'function';
}

/** Stored structures of `uids` (null where none was stored or it cannot be read). */
export async function storedStructures(store: Store, mailboxId: number, uids: readonly number[]): Promise<Map<number, MessageStructure | null>> {
  const out = new Map<number, MessageStructure | null>();
  if (uids.length === 0 || !hasStructures(store.messages)) return out;
  const ranges: UidRange[] = [];
  let i = 0;
  while (i < uids.length) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j]! + 1) j++;
    ranges.push({ from: uids[i]!, to: uids[j]! });
    i = j + 1;
  }
  const rows = await store.messages.structures(mailboxId, ranges);
  for (const row of rows) {
    let s: MessageStructure | null = null;
    if (row.structure !== null) {
      try {
        s = deserializeStructure(row.structure);
      } catch {
        s = null;
      }
    }
    out.set(row.uid, s);
  }
  return out;
}

/** The bytes of one message, or null when it is gone (expunged by another session). */
export async function messageContent(store: Store, mailboxId: number, uid: number): Promise<Buffer | null> {
  try {
    return await store.messages.content(mailboxId, uid);
  } catch (err) {
    if (isStoreError(err, 'not_found')) return null;
    throw err;
  }
}

/**
 * Loads what a fetch or search needs for one message. `known` is the stored structure (from
 * storedStructures), parsed from the content when absent.
 */
export async function loadMessage(
  store: Store,
  mailboxId: number,
  uid: number,
  need: { content: boolean; structure: boolean },
  known: MessageStructure | null | undefined,
): Promise<LoadedMessage | null> {
  let content: Buffer | null = null;
  let structure = known ?? null;
  if (need.content || (need.structure && !structure)) {
    content = await messageContent(store, mailboxId, uid);
    if (!content) return null;
    if (need.structure && !structure) structure = parseStructure(content);
  }
  return { content, structure };
}

/**
 * Splits ascending view indexes into batches of at most `maxCount` messages and about `maxBytes` of
 * content (a single larger message is a batch of its own), using the sizes the view already knows.
 * With `firstCount`, batches start that small and double up to `maxCount`: the client gets its first
 * bytes after a short read, and the larger reads that follow overlap with writing the earlier ones.
 */
export function batchesOf(indexes: readonly number[], sizes: readonly number[], maxCount: number, maxBytes: number, firstCount = maxCount): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  let count = Math.min(firstCount, maxCount);
  for (const i of indexes) {
    const size = sizes[i] ?? 0;
    if (cur.length > 0 && (cur.length >= count || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
      count = Math.min(count * 2, maxCount);
    }
    cur.push(i);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * loadMessage for several messages at once: the bytes that are needed come in one store round trip
 * (messages.contents); the result is keyed by UID, null for a message that is gone.
 */
export async function loadMessages(
  store: Store,
  mailboxId: number,
  uids: readonly number[],
  need: { content: boolean; structure: boolean },
  known: ReadonlyMap<number, MessageStructure | null>,
): Promise<Map<number, LoadedMessage | null>> {
  const out = new Map<number, LoadedMessage | null>();
  const wanted = uids.filter((uid) => need.content || (need.structure && !known.get(uid)));
  const bytes = wanted.length > 0 ? await store.messages.contents(mailboxId, wanted) : [];
  const byUid = new Map<number, Buffer | null>();
  for (let k = 0; k < wanted.length; k++) byUid.set(wanted[k]!, bytes[k] ?? null);
  for (const uid of uids) {
    let structure = known.get(uid) ?? null;
    if (!byUid.has(uid)) {
      out.set(uid, { content: null, structure });
      continue;
    }
    const content = byUid.get(uid) ?? null;
    if (!content) {
      out.set(uid, null);
      continue;
    }
    if (need.structure && !structure) structure = parseStructure(content);
    out.set(uid, { content: need.content ? content : null, structure });
  }
  return out;
}
