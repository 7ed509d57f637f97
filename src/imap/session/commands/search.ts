/*
 * SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH results (RFC 4731), SEARCHRES "$" (RFC 5182) and
 * MODSEQ (RFC 7162). Metadata keys are evaluated on the view alone; header keys from the server's header
 * cache where it has them; header, body, text and sent-date keys load each candidate's bytes and stored
 * structure in batches, one store round trip per batch, the next batch read while this one is searched
 * (the store reads and checks bytes on another thread, so a scan of a large mailbox uses both cores).
 * Strings match case-insensitively as substrings; charsets other than UTF-8 and US-ASCII are refused
 * with BADCHARSET.
 */
import { deserializeStructure, headerValues, parseStructure, sentDate, textContains } from '../../../mime/index.js';
import type { MessageStructure } from '../../../mime/types.js';
import type { Store, UidRange } from '../../../store/index.js';
import { batchesOf } from '../../message.js';
import { dayOf } from '../../proto/dates.js';
import { needsContent, parseSearch, usesModseq, type SearchKey } from '../../proto/search.js';
import { formatSet, resolveAgainst, resolveSeqIndexes, type SequenceSet } from '../../proto/sequence.js';
import { imapString } from '../../proto/response.js';
import { no, ok, type CommandHandler, type SessionContext } from '../types.js';
import type { MailboxView } from '../view.js';

/** One store round trip; two batches are held at a time (the one searched, the one being read). */
const BATCH = 256;
const BATCH_BYTES = 2 * 1024 * 1024;

interface Candidate {
  index: number;
  content: Buffer | null;
  structure: MessageStructure | null;
  /** the message's decoded, lowercased values of a header field; null when unknown */
  header(field: string): readonly string[] | null;
}

const noHeaders = (): null => null;

/** Header fields the key looks at, and whether it needs more of the message than those. */
function headerNeeds(key: SearchKey, fields: Set<string>): boolean {
  switch (key.k) {
    case 'header':
      fields.add(key.field.toLowerCase());
      return false;
    case 'body':
    case 'text':
      return true;
    case 'date':
      return key.which === 'sent';
    case 'not':
      return headerNeeds(key.key, fields);
    case 'or':
      return headerNeeds(key.a, fields) || headerNeeds(key.b, fields);
    case 'and':
      return key.keys.map((k) => headerNeeds(k, fields)).some(Boolean);
    default:
      return false;
  }
}

function inSet(view: MailboxView, set: SequenceSet, index: number, byUid: boolean, cache: Map<SequenceSet, Set<number>>): boolean {
  let members = cache.get(set);
  if (!members) {
    if (set.saved) members = new Set(view.saved.map((u) => view.indexOf(u)).filter((i) => i >= 0));
    else if (byUid) members = new Set(resolveAgainst(set.ranges, view.uids).map((u) => view.indexOf(u)));
    else members = new Set(resolveSeqIndexes(set.ranges, view.count));
    cache.set(set, members);
  }
  return members.has(index);
}

function matches(key: SearchKey, view: MailboxView, c: Candidate, cache: Map<SequenceSet, Set<number>>): boolean {
  const i = c.index;
  switch (key.k) {
    case 'all':
      return true;
    case 'seq':
      return inSet(view, key.set, i, false, cache);
    case 'uid':
      return inSet(view, key.set, i, true, cache);
    case 'flag': {
      const lower = key.flag.toLowerCase();
      const has = view.flags[i]!.some((f) => f.toLowerCase() === lower);
      return has === key.set;
    }
    case 'new':
    case 'recent':
      return false;
    case 'old':
      return true;
    case 'size':
      return key.op === 'larger' ? view.sizes[i]! > key.n : view.sizes[i]! < key.n;
    case 'modseq':
      return view.modseqs[i]! >= key.n;
    case 'date': {
      const when = key.which === 'internal' ? view.dates[i]! : c.structure ? sentDate(c.structure) : null;
      if (when === null) return false;
      const day = dayOf(when);
      return key.op === 'before' ? day < key.day : key.op === 'on' ? day === key.day : day >= key.day;
    }
    case 'header': {
      const values = c.header(key.field);
      if (values === null) return false;
      if (key.value === '') return values.length > 0;
      const needle = lowered(key.value);
      return values.some((v) => v.includes(needle));
    }
    case 'body':
      return !!c.content && !!c.structure && textContains(c.content, c.structure, key.value, 'body');
    case 'text':
      return !!c.content && !!c.structure && textContains(c.content, c.structure, key.value, 'text');
    case 'not':
      return !matches(key.key, view, c, cache);
    case 'or':
      return matches(key.a, view, c, cache) || matches(key.b, view, c, cache);
    case 'and':
      return key.keys.every((k) => matches(k, view, c, cache));
  }
}

/** The lowercase of the last needles asked for (a search tests one needle against every message). */
const lowerCache = new Map<string, string>();
function lowered(value: string): string {
  let l = lowerCache.get(value);
  if (l === undefined) {
    if (lowerCache.size >= 64) lowerCache.clear();
    lowerCache.set(value, (l = value.toLowerCase()));
  }
  return l;
}

interface LoadedMessage {
  index: number;
  uid: number;
  content: Buffer;
  /** the stored structure as stored; read only when the message's turn comes (see structureOf) */
  stored: string | null;
}

/**
 * The message's structure: the stored one, or parsed from the bytes when there is none or it cannot be
 * read. Made one message at a time, so the objects die young instead of a batch's worth of them
 * outliving garbage collections.
 */
function structureOf(m: LoadedMessage): MessageStructure {
  if (m.stored) {
    try {
      return deserializeStructure(m.stored);
    } catch {
      // damaged: parse the bytes instead
    }
  }
  return parseStructure(m.content);
}

function rangesOf(uids: readonly number[]): UidRange[] {
  const ranges: UidRange[] = [];
  for (const uid of uids) {
    const last = ranges[ranges.length - 1];
    if (last && uid === last.to + 1) last.to = uid;
    else ranges.push({ from: uid, to: uid });
  }
  return ranges;
}

/** Bytes and structures of one batch (asked for in the same turn: one round trip); messages gone meanwhile are left out. */
async function readBatch(store: Store, view: MailboxView, batch: readonly number[]): Promise<LoadedMessage[]> {
  const uids = batch.map((i) => view.uids[i]!);
  const [contents, rows] = await Promise.all([store.messages.contents(view.id, uids, 'scan'), store.messages.structures(view.id, rangesOf(uids))]);
  const stored = new Map<number, string | null>();
  for (const r of rows) stored.set(r.uid, r.structure);
  const out: LoadedMessage[] = [];
  for (let k = 0; k < batch.length; k++) {
    const content = contents[k];
    if (content) out.push({ index: batch[k]!, uid: uids[k]!, content, stored: stored.get(uids[k]!) ?? null });
  }
  return out;
}

/** The messages at `indexes` (ascending), batch by batch; the next batch is read while the caller works on this one. */
async function* loadBatches(store: Store, view: MailboxView, indexes: readonly number[]): AsyncGenerator<LoadedMessage[]> {
  const batches = batchesOf(indexes, view.sizes, BATCH, BATCH_BYTES);
  const read = (b: number): Promise<LoadedMessage[]> | null => {
    if (b >= batches.length) return null;
    const p = readBatch(store, view, batches[b]!);
    // if the search stops early (an error), a read still under way must not become an unhandled rejection
    p.catch(() => undefined);
    return p;
  };
  let next = read(0);
  for (let b = 0; next; b++) {
    const current = next;
    next = read(b + 1);
    yield await current;
  }
}

function searcher(byUid: boolean): CommandHandler {
  return async (ctx, cmd) => {
    const search = parseSearch(cmd.args);
    if (search.charset !== null && search.charset !== 'UTF-8' && search.charset !== 'US-ASCII') {
      return no('Unsupported charset', 'BADCHARSET (UTF-8 US-ASCII)');
    }
    const view = ctx.view!;
    const modseq = usesModseq(search.key);
    if (modseq) ctx.condstore = true;
    const cache = new Map<SequenceSet, Set<number>>();
    const hits: number[] = [];
    if (!needsContent(search.key)) {
      for (let i = 0; i < view.count; i++) {
        if (matches(search.key, view, { index: i, content: null, structure: null, header: noHeaders }, cache)) hits.push(i);
      }
    } else {
      // header-only searches answer from the server's header cache where it has every field
      const fields = new Set<string>();
      const wholeMessage = headerNeeds(search.key, fields);
      const fieldList = [...fields];
      const headerCache = ctx.headerCache;
      const toLoad: number[] = [];
      if (wholeMessage) {
        for (let i = 0; i < view.count; i++) toLoad.push(i);
      } else {
        let uid = 0;
        const cached: Candidate = { index: 0, content: null, structure: null, header: (field) => headerCache.get(view.id, field, uid) ?? null };
        const allCached = (): boolean => {
          for (const f of fieldList) if (headerCache.get(view.id, f, uid) === undefined) return false;
          return true;
        };
        for (let i = 0; i < view.count; i++) {
          uid = view.uids[i]!;
          if (!allCached()) {
            toLoad.push(i);
            continue;
          }
          cached.index = i;
          if (matches(search.key, view, cached, cache)) hits.push(i);
        }
      }
      for await (const batch of loadBatches(ctx.store, view, toLoad)) {
        for (const m of batch) {
          const { index, uid, content } = m;
          const structure = structureOf(m);
          const header = (field: string): readonly string[] => {
            const known = headerCache.get(view.id, field, uid);
            if (known) return known;
            const values = headerValues(content, structure, field).map((v) => v.toLowerCase());
            headerCache.set(view.id, field, uid, values);
            return values;
          };
          for (const f of fieldList) header(f);
          if (matches(search.key, view, { index, content, structure, header }, cache)) hits.push(index);
        }
      }
      hits.sort((a, b) => a - b);
    }
    const values = hits.map((i) => (byUid ? view.uids[i]! : i + 1));
    const maxModseq = modseq && hits.length > 0 ? Math.max(...hits.map((i) => view.modseqs[i]!)) : null;
    const returns = search.returns ?? (ctx.enabled.has('IMAP4REV2') ? ['ALL' as const] : null);
    if (returns === null) {
      ctx.send(`* SEARCH${values.map((v) => ` ${v}`).join('')}${maxModseq !== null ? ` (MODSEQ ${maxModseq})` : ''}\r\n`);
    } else {
      const opts = returns.length === 0 ? ['ALL'] : returns;
      if (opts.includes('SAVE')) view.saved = saveOf(opts, hits.map((i) => view.uids[i]!));
      const parts: string[] = [`(TAG ${imapString(cmd.tag)})`];
      if (byUid) parts.push('UID');
      if (values.length > 0) {
        if (opts.includes('MIN')) parts.push(`MIN ${values[0]}`);
        if (opts.includes('MAX')) parts.push(`MAX ${values[values.length - 1]}`);
        if (opts.includes('ALL')) parts.push(`ALL ${formatSet(values)}`);
      }
      if (opts.includes('COUNT')) parts.push(`COUNT ${values.length}`);
      if (maxModseq !== null) parts.push(`MODSEQ ${maxModseq}`);
      const onlySave = opts.length === 1 && opts[0] === 'SAVE';
      if (!onlySave) ctx.send(`* ESEARCH ${parts.join(' ')}\r\n`);
    }
    return ok(`${byUid ? 'UID SEARCH' : 'SEARCH'} completed`);
  };
}

/** RFC 5182 §2.1: with MIN/MAX only, SAVE keeps just those. */
function saveOf(opts: string[], uids: number[]): number[] {
  if (opts.includes('ALL') || opts.includes('COUNT') || (!opts.includes('MIN') && !opts.includes('MAX'))) return uids;
  const out: number[] = [];
  if (opts.includes('MIN') && uids.length > 0) out.push(uids[0]!);
  if (opts.includes('MAX') && uids.length > 0 && uids[uids.length - 1] !== out[0]) out.push(uids[uids.length - 1]!);
  return out;
}

export const search = searcher(false);
export const uidSearch = searcher(true);

export type { SessionContext };
