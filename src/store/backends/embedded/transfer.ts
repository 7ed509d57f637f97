/*
 * Which memory a worker reply may move to the main thread instead of copying. postMessage clones by
 * default, and the copy of a message's bytes is made on the receiving side: the main thread, which
 * serves every session. A buffer SQLite returned is alone on its ArrayBuffer, so moving it costs
 * nothing; a view into shared or pooled memory is never moved (that would detach its neighbours), unless
 * the memory was marked as holding nothing but what the reply carries (markMovable).
 */

/** Memory whose every view goes out in one reply (a batch of messages read as one buffer). */
const movable = new WeakSet<ArrayBuffer>();

/**
 * Lets views into `whole`'s memory move with their reply: nothing outside the reply may look into it.
 * Only a buffer alone on its memory qualifies (never a pooled one, whose neighbours are not ours).
 */
export function markMovable(whole: Uint8Array): void {
  if (ownsItsMemory(whole)) movable.add(whole.buffer as ArrayBuffer);
}

/** The shape of one reply as far as transfer is concerned (worker.ts's Reply). */
export interface ReplyLike {
  ok: boolean;
  value?: unknown;
}

/** True for a non-empty Uint8Array that covers its whole, unshared ArrayBuffer. */
export function ownsItsMemory(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.byteLength > 0 && v.byteOffset === 0 && v.buffer instanceof ArrayBuffer && v.buffer.byteLength === v.byteLength;
}

/**
 * The ArrayBuffers of message bytes in replies (a blob value, a result's `content`, or the elements of
 * an array of contents), each once.
 */
export function transferablesOf(replies: readonly ReplyLike[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const add = (c: unknown): void => {
    if (ownsItsMemory(c) || (c instanceof Uint8Array && movable.has(c.buffer as ArrayBuffer))) out.add(c.buffer as ArrayBuffer);
  };
  for (const r of replies) {
    if (!r.ok) continue;
    const v = r.value;
    if (Array.isArray(v)) v.forEach(add);
    else add(typeof v === 'object' && v !== null && 'content' in v ? (v as { content: unknown }).content : v);
  }
  return [...out];
}
