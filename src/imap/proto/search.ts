/*
 * SEARCH criteria (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 4731 ESEARCH RETURN options)
 * parsed into a key tree. Evaluation belongs to the session (it needs the mailbox view and message
 * data); this module only turns tokens into typed keys and rejects what is malformed. Pure.
 */
import { parseDate } from './dates.js';
import { parseSequenceSet, type SequenceSet } from './sequence.js';
import { Args, ImapParseError, numberOf, type Token } from './tokens.js';

export type SearchKey =
  | { k: 'all' }
  | { k: 'seq'; set: SequenceSet }
  | { k: 'uid'; set: SequenceSet }
  | { k: 'flag'; flag: string; set: boolean }
  | { k: 'new' }
  | { k: 'old' }
  | { k: 'recent' }
  | { k: 'date'; which: 'internal' | 'sent'; op: 'before' | 'on' | 'since'; day: number }
  | { k: 'size'; op: 'larger' | 'smaller'; n: number }
  | { k: 'header'; field: string; value: string }
  | { k: 'body'; value: string }
  | { k: 'text'; value: string }
  | { k: 'modseq'; n: number }
  | { k: 'not'; key: SearchKey }
  | { k: 'or'; a: SearchKey; b: SearchKey }
  | { k: 'and'; keys: SearchKey[] };

export type SearchReturn = 'MIN' | 'MAX' | 'COUNT' | 'ALL' | 'SAVE';

export interface SearchCommand {
  /** null: plain SEARCH response; otherwise ESEARCH with these options (empty list means ALL) */
  returns: SearchReturn[] | null;
  charset: string | null;
  key: SearchKey;
}

const MAX_DEPTH = 32;
const MAX_KEYS = 1000;

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

export function parseSearch(tokens: Token[]): SearchCommand {
  const args = new Args(tokens, 'search keys');
  let returns: SearchReturn[] | null = null;
  if (args.optionalWord('RETURN')) {
    returns = [];
    for (const t of args.list('RETURN options')) {
      if (t.t !== 'atom') throw new ImapParseError('Invalid RETURN option');
      const o = t.v.toUpperCase();
      if (o !== 'MIN' && o !== 'MAX' && o !== 'COUNT' && o !== 'ALL' && o !== 'SAVE') throw new ImapParseError(`Unknown RETURN option "${o.slice(0, 20)}"`);
      if (!returns.includes(o)) returns.push(o);
    }
  }
  let charset: string | null = null;
  if (args.optionalWord('CHARSET')) charset = args.astring('charset').toUpperCase();
  const state = { count: 0 };
  const keys: SearchKey[] = [];
  while (args.remaining > 0) keys.push(parseKey(args, 0, state));
  if (keys.length === 0) throw new ImapParseError('Missing search criteria');
  return { returns, charset, key: keys.length === 1 ? keys[0]! : { k: 'and', keys } };
}

function text(args: Args, what: string): string {
  const t = args.next(what);
  if (t.t === 'list') throw new ImapParseError(`Expected a string for ${what}`);
  return t.t === 'string' ? t.v.toString('utf8') : t.v;
}

function parseKey(args: Args, depth: number, state: { count: number }): SearchKey {
  if (depth > MAX_DEPTH) throw new ImapParseError('Search criteria nested too deeply');
  if (++state.count > MAX_KEYS) throw new ImapParseError('Too many search criteria');
  const t = args.next('search key');
  if (t.t === 'list') {
    if (t.v.length === 0) throw new ImapParseError('Empty search key list');
    const inner = new Args(t.v, 'search keys');
    const keys: SearchKey[] = [];
    while (inner.remaining > 0) keys.push(parseKey(inner, depth + 1, state));
    return keys.length === 1 ? keys[0]! : { k: 'and', keys };
  }
  if (t.t === 'string') throw new ImapParseError('Expected a search key');
  const word = t.v.toUpperCase();
  const flag = FLAG_KEYS[word];
  if (flag) return { k: 'flag', flag: flag[0], set: flag[1] };
  switch (word) {
    case 'ALL':
      return { k: 'all' };
    case 'NEW':
      return { k: 'new' };
    case 'OLD':
      return { k: 'old' };
    case 'RECENT':
      return { k: 'recent' };
    case 'KEYWORD':
    case 'UNKEYWORD': {
      const kw = args.atom('keyword');
      if (!isFlag(kw) || kw.startsWith('\\')) throw new ImapParseError('Invalid keyword');
      return { k: 'flag', flag: kw, set: word === 'KEYWORD' };
    }
    case 'BEFORE':
    case 'ON':
    case 'SINCE':
      return { k: 'date', which: 'internal', op: word.toLowerCase() as 'before', day: parseDate(dateText(args)) };
    case 'SENTBEFORE':
    case 'SENTON':
    case 'SENTSINCE':
      return { k: 'date', which: 'sent', op: word.slice(4).toLowerCase() as 'before', day: parseDate(dateText(args)) };
    case 'LARGER':
    case 'SMALLER':
      return { k: 'size', op: word.toLowerCase() as 'larger', n: args.number('size', Number.MAX_SAFE_INTEGER) };
    case 'BCC':
    case 'CC':
    case 'FROM':
    case 'SUBJECT':
    case 'TO':
      return { k: 'header', field: word.charAt(0) + word.slice(1).toLowerCase(), value: text(args, word) };
    case 'HEADER': {
      const field = text(args, 'header field name');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapParseError('Invalid header field name');
      return { k: 'header', field, value: text(args, 'header value') };
    }
    case 'BODY':
      return { k: 'body', value: text(args, 'BODY') };
    case 'TEXT':
      return { k: 'text', value: text(args, 'TEXT') };
    case 'UID':
      return { k: 'uid', set: parseSequenceSet(args.atom('UID set')) };
    case 'NOT':
      return { k: 'not', key: parseKey(args, depth + 1, state) };
    case 'OR':
      return { k: 'or', a: parseKey(args, depth + 1, state), b: parseKey(args, depth + 1, state) };
    case 'MODSEQ': {
      // MODSEQ [entry-name entry-type] mod-sequence-valzer
      const first = args.next('mod-sequence');
      if (first.t === 'string') {
        args.atom('entry type');
        return { k: 'modseq', n: numberOf(args.atom('mod-sequence'), 'MODSEQ', Number.MAX_SAFE_INTEGER) };
      }
      if (first.t !== 'atom') throw new ImapParseError('Invalid MODSEQ');
      return { k: 'modseq', n: numberOf(first.v, 'MODSEQ', Number.MAX_SAFE_INTEGER) };
    }
  }
  if (/^[\d*$]/.test(word)) return { k: 'seq', set: parseSequenceSet(t.v) };
  throw new ImapParseError(`Unknown search key "${word.slice(0, 30)}"`);
}

function dateText(args: Args): string {
  const t = args.next('date');
  if (t.t === 'list') throw new ImapParseError('Expected a date');
  return t.t === 'string' ? t.v.toString('latin1') : t.v;
}

/** flag = "\" atom / keyword (atom); \Recent and \* are not storable flags. */
export function isFlag(text: string): boolean {
  return /^\\?[^\x00-\x20\x7f(){%*"\\\]]+$/.test(text);
}

/** True when a search key needs message headers or bodies, not just the view's metadata. */
export function needsContent(key: SearchKey): boolean {
  switch (key.k) {
    case 'header':
    case 'body':
    case 'text':
      return true;
    case 'date':
      return key.which === 'sent';
    case 'not':
      return needsContent(key.key);
    case 'or':
      return needsContent(key.a) || needsContent(key.b);
    case 'and':
      return key.keys.some(needsContent);
    default:
      return false;
  }
}

export function usesModseq(key: SearchKey): boolean {
  switch (key.k) {
    case 'modseq':
      return true;
    case 'not':
      return usesModseq(key.key);
    case 'or':
      return usesModseq(key.a) || usesModseq(key.b);
    case 'and':
      return key.keys.some(usesModseq);
    default:
      return false;
  }
}
