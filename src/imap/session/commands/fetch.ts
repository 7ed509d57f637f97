/*
 * FETCH and UID FETCH (RFC 9051 §6.4.5, BINARY RFC 3516, CONDSTORE/QRESYNC RFC 7162). Answers from the
 * view for metadata-only items (no store call for FLAGS/UID/MODSEQ/INTERNALDATE/RFC822.SIZE), from the
 * stored structure for ENVELOPE/BODYSTRUCTURE, and reads bodies only for sections — in batches (the bytes
 * of a batch in one store call, the next batch read while this one is written), writing each response as
 * it is built and waiting for the client to read (back-pressure), so a large FETCH holds two batches in
 * memory at most. Non-PEEK body fetches set \Seen and report the new FLAGS.
 */
import { binaryBytes, imapBodyStructure, imapEnvelope, sectionBytes } from '../../../mime/index.js';
import type { MessageStructure } from '../../../mime/types.js';
import { batchesOf, loadMessages, storedStructures } from '../../message.js';
import { formatDateTime } from '../../proto/dates.js';
import { parseFetchItems, parseFetchModifiers, planOf, type FetchItem, type FetchPlan, type Partial } from '../../proto/fetch.js';
import { flagList } from '../../proto/response.js';
import { formatSet, parseSequenceSet, resolveAgainst, resolveSeqIndexes, seqOutOfRange } from '../../proto/sequence.js';
import { Args, ImapParseError } from '../../proto/tokens.js';
import { bad, no, ok, type CommandHandler, type SessionContext, type Tagged } from '../types.js';
import type { MailboxView } from '../view.js';

const BATCH = 200;
/** messages in the first batch of a body FETCH (batches then double up to BATCH) */
const FIRST_BATCH = 25;
/** bytes of message content held at once by one FETCH */
const BATCH_BYTES = 4 * 1024 * 1024;
const FLUSH_AT = 256 * 1024;

/** Message indexes (0-based, ascending) named by a sequence-set argument. */
export function resolveSet(ctx: SessionContext, text: string, byUid: boolean): number[] | Tagged {
  const view = ctx.view!;
  const set = parseSequenceSet(text);
  if (set.saved) return view.saved.map((u) => view.indexOf(u)).filter((i) => i >= 0);
  if (byUid) return resolveAgainst(set.ranges, view.uids).map((u) => view.indexOf(u));
  if (seqOutOfRange(set.ranges, view.count)) return bad('Invalid message sequence number');
  return resolveSeqIndexes(set.ranges, view.count);
}

function fetcher(byUid: boolean): CommandHandler {
  return async (ctx, cmd) => {
    const args = new Args(cmd.args);
    const setText = args.atom('sequence set');
    let plan = parseFetchItems(args.next('fetch attributes'));
    const modifiers = args.remaining > 0 ? parseFetchModifiers(args.list('FETCH modifiers')) : { changedSince: null, vanished: false };
    args.end();
    if (modifiers.vanished && (!byUid || !ctx.enabled.has('QRESYNC'))) throw new ImapParseError('VANISHED needs UID FETCH and QRESYNC');
    const view = ctx.view!;
    const resolved = resolveSet(ctx, setText, byUid);
    if (!Array.isArray(resolved)) return resolved;
    let items = plan.items;
    if (byUid && !items.some((i) => i.k === 'uid')) items = [{ k: 'uid' }, ...items];
    if (modifiers.changedSince !== null || items.some((i) => i.k === 'modseq')) ctx.condstore = true;
    if (modifiers.changedSince !== null && !items.some((i) => i.k === 'modseq')) items = [...items, { k: 'modseq' }];
    plan = planOf(items);
    if (modifiers.vanished && modifiers.changedSince !== null) await sendVanished(ctx, view, setText, modifiers.changedSince);
    let indexes = resolved;
    if (modifiers.changedSince !== null) {
      const since = modifiers.changedSince;
      indexes = indexes.filter((i) => view.modseqs[i]! > since);
    }
    if (!plan.content && !plan.structure && !plan.setsSeen) {
      await fetchMeta(ctx, view, indexes, plan.items);
      return ok(`${byUid ? 'UID FETCH' : 'FETCH'} completed`);
    }
    const batches = plan.content ? batchesOf(indexes, view.sizes, BATCH, BATCH_BYTES, FIRST_BATCH) : batchesOf(indexes, [], BATCH, 0);
    // read-ahead: the next batch is read from the store while this one is written to the client (not when
    // reading sets \Seen: a client that goes away must not leave a batch it never got marked as read)
    const readAhead = !plan.setsSeen;
    let next: Promise<Prepared> | null = null;
    for (let b = 0; b < batches.length; b++) {
      const prepared = await (next ?? prepareBatch(ctx, view, batches[b]!, plan));
      next = null;
      if (readAhead && b + 1 < batches.length) {
        next = prepareBatch(ctx, view, batches[b + 1]!, plan);
        // observed now, so a failure while this batch is written is not an unhandled rejection; the
        // await above still gets it, and one nobody awaits (BAD/NO below) is dropped
        next.catch(() => undefined);
      }
      const result = await writeBatch(ctx, view, prepared, plan);
      if (result) return result;
    }
    return ok(`${byUid ? 'UID FETCH' : 'FETCH'} completed`);
  };
}

export const fetch = fetcher(false);
export const uidFetch = fetcher(true);

async function sendVanished(ctx: SessionContext, view: MailboxView, setText: string, since: number): Promise<void> {
  const set = parseSequenceSet(setText);
  const changes = await ctx.store.changes.since(view.id, since);
  const gone = [...new Set(changes.filter((c) => c.kind === 'expunge' && view.indexOf(c.uid) < 0).map((c) => c.uid))].sort((a, b) => a - b);
  const named = set.saved ? gone.filter((u) => view.saved.includes(u)) : resolveAgainst(set.ranges, gone);
  if (named.length > 0) ctx.send(`* VANISHED (EARLIER) ${formatSet(named)}\r\n`);
}

/** FLAGS text per flag set: the view shares one array per distinct set, so 100,000 lines format a few lists */
const flagTexts = new WeakMap<readonly string[], string>();
/** flag sets whose text is not all ASCII (keywords are atoms, so none should be; if one is, it goes as UTF-8) */
const notAscii = new WeakSet<readonly string[]>();

function flagsText(flags: readonly string[]): string {
  let t = flagTexts.get(flags);
  if (t === undefined) {
    t = flagList(flags);
    flagTexts.set(flags, t);
    if (/[^\x00-\x7f]/.test(t)) notAscii.add(flags);
  }
  return t;
}

/** The items that come from the view alone (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) for message `i`. */
function metaItem(item: FetchItem, view: MailboxView, i: number): string | null {
  switch (item.k) {
    case 'flags':
      return `FLAGS ${flagsText(view.flags[i]!)}`;
    case 'uid':
      return `UID ${view.uids[i]}`;
    case 'internaldate':
      return `INTERNALDATE "${formatDateTime(view.dates[i]!)}"`;
    case 'size':
      return `RFC822.SIZE ${view.sizes[i]}`;
    case 'modseq':
      return `MODSEQ (${view.modseqs[i]})`;
    default:
      return null;
  }
}

/**
 * A FETCH of view items only (FETCH 1:* (UID FLAGS)): no store call, one string per ~64 KB of lines
 * rather than pieces per line, flushed (with back-pressure) every FLUSH_AT bytes.
 */
async function fetchMeta(ctx: SessionContext, view: MailboxView, indexes: readonly number[], items: readonly FetchItem[]): Promise<void> {
  let chunk = '';
  let ascii = true;
  let pending = 0;
  const withFlags = items.some((it) => it.k === 'flags');
  // ASCII text is copied into a Buffer byte for byte (latin1), far cheaper than UTF-8 encoding
  const emit = (): void => {
    ctx.send(ascii ? Buffer.from(chunk, 'latin1') : chunk);
    pending += chunk.length;
    chunk = '';
    ascii = true;
  };
  for (const i of indexes) {
    let line = `* ${i + 1} FETCH (`;
    for (let k = 0; k < items.length; k++) line += (k === 0 ? '' : ' ') + metaItem(items[k]!, view, i)!;
    chunk += `${line})\r\n`;
    if (withFlags && notAscii.has(view.flags[i]!)) ascii = false;
    if (chunk.length >= 64 * 1024) {
      emit();
      if (pending >= FLUSH_AT) {
        pending = 0;
        await ctx.flush();
      }
    }
  }
  if (chunk) emit();
  ctx.counters.fetched += indexes.length;
}

interface Prepared {
  indexes: number[];
  /** messages whose \Seen this FETCH set: their FLAGS go out even if not asked for */
  flagsChanged: Set<number>;
  loads: Map<number, { content: Buffer | null; structure: MessageStructure | null } | null> | null;
}

/** Sets \Seen where the items ask for it and reads what the batch needs from the store. */
async function prepareBatch(ctx: SessionContext, view: MailboxView, indexes: number[], plan: FetchPlan): Promise<Prepared> {
  const flagsChanged = new Set<number>();
  if (plan.setsSeen && !view.readOnly) {
    const unseen = indexes.filter((i) => !view.flags[i]!.includes('\\Seen'));
    if (unseen.length > 0) {
      const res = await ctx.store.messages.setFlags(view.id, view.rangesOf(unseen), 'add', ['\\Seen']);
      for (const u of res.updated) {
        const i = view.indexOf(u.uid);
        if (i < 0) continue;
        view.setFlags(i, u.flags, u.modseq);
        flagsChanged.add(i);
      }
    }
  }
  const structures = plan.structure ? await storedStructures(ctx.store, view.id, indexes.map((i) => view.uids[i]!)) : new Map<number, MessageStructure | null>();
  const loads =
    plan.content || plan.structure
      ? await loadMessages(ctx.store, view.id, indexes.map((i) => view.uids[i]!), { content: plan.content, structure: plan.structure }, structures)
      : null;
  return { indexes, flagsChanged, loads };
}

/** Writes the responses of a prepared batch, waiting for the client to read every FLUSH_AT bytes. */
async function writeBatch(ctx: SessionContext, view: MailboxView, prepared: Prepared, plan: FetchPlan): Promise<Tagged | null> {
  const { indexes, flagsChanged, loads } = prepared;
  const modseqAsked = plan.items.some((it) => it.k === 'modseq');
  let pending = 0;
  for (const i of indexes) {
    const uid = view.uids[i]!;
    let text = `* ${i + 1} FETCH (`;
    let sep = '';
    let loaded: { content: Buffer | null; structure: MessageStructure | null } | null = null;
    if (loads) {
      loaded = loads.get(uid) ?? null;
      if (!loaded) continue; // expunged by another session meanwhile
    }
    let flagsSent = false;
    for (const item of plan.items) {
      let piece = metaItem(item, view, i);
      if (item.k === 'flags') flagsSent = true;
      if (piece === null) {
        switch (item.k) {
          case 'envelope':
            piece = `ENVELOPE ${imapEnvelope(loaded!.structure!)}`;
            break;
          case 'bodystructure':
            piece = `BODYSTRUCTURE ${imapBodyStructure(loaded!.structure!, true)}`;
            break;
          case 'body':
            piece = `BODY ${imapBodyStructure(loaded!.structure!, false)}`;
            break;
          default: {
            // BODY[] needs no structure (planOf): structure is null then, and bodyItem does not read it
            const r = bodyItem(item, loaded!.content!, loaded!.structure!);
            if (r === 'unknown-cte') return no('Unknown content transfer encoding', 'UNKNOWN-CTE');
            if (typeof r === 'string') {
              piece = r;
            } else {
              ctx.send(text + sep + r.head);
              ctx.send(r.data);
              pending += text.length + r.head.length + r.data.length;
              ctx.counters.fetchedBytes += r.data.length;
              // the next item follows the literal's bytes after a space
              text = '';
              sep = ' ';
              continue;
            }
          }
        }
      }
      text += sep + piece;
      sep = ' ';
    }
    if (flagsChanged.has(i) && !flagsSent) text += `${sep}FLAGS ${flagsText(view.flags[i]!)}`;
    if (flagsChanged.has(i) && ctx.condstore && !modseqAsked) text += ` MODSEQ (${view.modseqs[i]})`;
    text += ')\r\n';
    ctx.send(text);
    pending += text.length;
    ctx.counters.fetched++;
    if (pending >= FLUSH_AT) {
      pending = 0;
      await ctx.flush();
    }
  }
  return null;
}

type BodyResult = string | { head: string; data: Buffer } | 'unknown-cte';

function literal(label: string, data: Buffer | null, partial: Partial | null, binary: boolean): BodyResult {
  const name = partial ? `${label}<${partial.offset}>` : label;
  if (data === null) return `${name} NIL`;
  let bytes = data;
  if (partial) bytes = partial.offset >= data.length ? Buffer.alloc(0) : data.subarray(partial.offset, partial.offset + partial.length);
  const tilde = binary && bytes.includes(0) ? '~' : '';
  return { head: `${name} ${tilde}{${bytes.length}}\r\n`, data: bytes };
}

function bodyItem(item: FetchItem, content: Buffer, s: MessageStructure): BodyResult {
  switch (item.k) {
    case 'section': {
      const sec = item.section;
      const data = sec.part.length === 0 && sec.kind === 'all' ? content : sectionBytes(content, s, { part: sec.part, kind: sec.kind, ...(sec.fields ? { fields: sec.fields } : {}) });
      return literal(item.label, data, item.partial, false);
    }
    case 'binary': {
      const data = binaryBytes(content, s, item.part);
      if (data === 'unknown-cte') return 'unknown-cte';
      return literal(item.label, data, item.partial, true);
    }
    case 'binary.size': {
      const data = binaryBytes(content, s, item.part);
      if (data === 'unknown-cte') return 'unknown-cte';
      return `${item.label} ${data === null ? 'NIL' : data.length}`;
    }
    default:
      throw new Error(`not a body item: ${item.k}`);
  }
}
