/*
 * FETCH data items (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ): macros, simple items and body
 * sections with partial ranges, parsed once into a plan the session executes. The plan also says what
 * the fetch needs (content, structure, nothing but flags) so a FETCH 1:* (UID FLAGS) never touches bodies.
 * Pure.
 */
import { ImapParseError, type Token } from './tokens.js';

export type SectionKind = 'all' | 'header' | 'header.fields' | 'header.fields.not' | 'text' | 'mime';

export interface Section {
  part: number[];
  kind: SectionKind;
  fields?: string[];
}

export type FetchItem =
  | { k: 'flags' }
  | { k: 'uid' }
  | { k: 'internaldate' }
  | { k: 'size' }
  | { k: 'envelope' }
  | { k: 'bodystructure' }
  | { k: 'body' }
  | { k: 'modseq' }
  /** BODY[...] / BODY.PEEK[...] / RFC822 / RFC822.HEADER / RFC822.TEXT */
  | { k: 'section'; section: Section; peek: boolean; partial: Partial | null; label: string }
  | { k: 'binary'; part: number[]; peek: boolean; partial: Partial | null; label: string }
  | { k: 'binary.size'; part: number[]; label: string };

export interface Partial {
  offset: number;
  length: number;
}

export interface FetchPlan {
  items: FetchItem[];
  /** some item needs the message bytes */
  content: boolean;
  /** some item needs the parsed structure */
  structure: boolean;
  /** some item sets \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY[...]) */
  setsSeen: boolean;
}

const MAX_ITEMS = 100;

export function parseFetchItems(token: Token): FetchPlan {
  let items: FetchItem[];
  if (token.t === 'atom') {
    const macro = token.v.toUpperCase();
    if (macro === 'ALL') items = [{ k: 'flags' }, { k: 'internaldate' }, { k: 'size' }, { k: 'envelope' }];
    else if (macro === 'FAST') items = [{ k: 'flags' }, { k: 'internaldate' }, { k: 'size' }];
    else if (macro === 'FULL') items = [{ k: 'flags' }, { k: 'internaldate' }, { k: 'size' }, { k: 'envelope' }, { k: 'body' }];
    else items = [parseItem(token.v)];
  } else if (token.t === 'list') {
    if (token.v.length === 0) throw new ImapParseError('Empty fetch attribute list');
    if (token.v.length > MAX_ITEMS) throw new ImapParseError('Too many fetch attributes');
    items = token.v.map((t) => {
      if (t.t !== 'atom') throw new ImapParseError('Invalid fetch attribute');
      return parseItem(t.v);
    });
  } else {
    throw new ImapParseError('Invalid fetch attributes');
  }
  return planOf(items);
}

export function planOf(items: FetchItem[]): FetchPlan {
  let content = false;
  let structure = false;
  let setsSeen = false;
  for (const it of items) {
    if (it.k === 'envelope' || it.k === 'bodystructure' || it.k === 'body') structure = true;
    if (it.k === 'section' || it.k === 'binary' || it.k === 'binary.size') {
      content = true;
      // the whole message (BODY[], RFC822) is the stored bytes as they are: no structure to read
      if (it.k !== 'section' || it.section.part.length > 0 || it.section.kind !== 'all') structure = true;
      if (it.k !== 'binary.size' && !it.peek) setsSeen = true;
    }
  }
  return { items, content, structure, setsSeen };
}

function parseItem(text: string): FetchItem {
  const upper = text.toUpperCase();
  switch (upper) {
    case 'FLAGS':
      return { k: 'flags' };
    case 'UID':
      return { k: 'uid' };
    case 'INTERNALDATE':
      return { k: 'internaldate' };
    case 'RFC822.SIZE':
      return { k: 'size' };
    case 'ENVELOPE':
      return { k: 'envelope' };
    case 'BODYSTRUCTURE':
      return { k: 'bodystructure' };
    case 'BODY':
      return { k: 'body' };
    case 'MODSEQ':
      return { k: 'modseq' };
    case 'RFC822':
      return { k: 'section', section: { part: [], kind: 'all' }, peek: false, partial: null, label: 'RFC822' };
    case 'RFC822.HEADER':
      return { k: 'section', section: { part: [], kind: 'header' }, peek: true, partial: null, label: 'RFC822.HEADER' };
    case 'RFC822.TEXT':
      return { k: 'section', section: { part: [], kind: 'text' }, peek: false, partial: null, label: 'RFC822.TEXT' };
  }
  const m = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/i.exec(text);
  if (!m) throw new ImapParseError(`Unknown fetch attribute "${text.slice(0, 40)}"`);
  const name = m[1]!.toUpperCase();
  const spec = m[2]!;
  const partial = m[3] !== undefined ? { offset: Number(m[3]), length: Number(m[4]) } : null;
  if (partial && partial.length === 0) throw new ImapParseError('Partial length must not be zero');
  if (name.startsWith('BINARY')) {
    const part = parsePart(spec);
    if (name === 'BINARY.SIZE') {
      if (partial) throw new ImapParseError('BINARY.SIZE takes no partial range');
      return { k: 'binary.size', part, label: `BINARY.SIZE[${spec}]` };
    }
    return { k: 'binary', part, peek: name === 'BINARY.PEEK', partial, label: `BINARY[${spec}]` };
  }
  const section = parseSection(spec);
  return { k: 'section', section, peek: name === 'BODY.PEEK', partial, label: `BODY[${formatSection(section)}]` };
}

function parsePart(spec: string): number[] {
  if (spec === '') return [];
  if (!/^[1-9]\d{0,4}(\.[1-9]\d{0,4})*$/.test(spec)) throw new ImapParseError(`Invalid section part "${spec.slice(0, 40)}"`);
  const part = spec.split('.').map(Number);
  if (part.length > 32) throw new ImapParseError('Section nested too deeply');
  return part;
}

export function parseSection(spec: string): Section {
  let numbers = '';
  let rest = spec;
  const dm = /^([1-9]\d{0,4}(?:\.[1-9]\d{0,4})*)(?:\.(.*))?$/s.exec(spec);
  if (dm) {
    numbers = dm[1]!;
    rest = dm[2] ?? '';
  }
  const part = numbers === '' ? [] : numbers.split('.').map(Number);
  if (part.length > 32) throw new ImapParseError('Section nested too deeply');
  const upper = rest.toUpperCase();
  if (rest === '') return { part, kind: 'all' };
  if (upper === 'HEADER') return { part, kind: 'header' };
  if (upper === 'TEXT') return { part, kind: 'text' };
  if (upper === 'MIME') {
    if (part.length === 0) throw new ImapParseError('MIME needs a part number');
    return { part, kind: 'mime' };
  }
  const fm = /^(HEADER\.FIELDS(?:\.NOT)?) \(([^()]*)\)$/i.exec(rest);
  if (!fm) throw new ImapParseError(`Invalid section "${spec.slice(0, 60)}"`);
  const fields = fm[2]!.split(' ').filter((f) => f !== '');
  if (fields.length === 0) throw new ImapParseError('Empty header field list');
  for (const f of fields) {
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(f) || f.includes('"')) throw new ImapParseError(`Invalid header field name "${f.slice(0, 40)}"`);
  }
  const kind = fm[1]!.toUpperCase() === 'HEADER.FIELDS' ? 'header.fields' : 'header.fields.not';
  return { part, kind, fields };
}

export function formatSection(s: Section): string {
  const nums = s.part.join('.');
  const kind =
    s.kind === 'all'
      ? ''
      : s.kind === 'header.fields' || s.kind === 'header.fields.not'
        ? `${s.kind.toUpperCase()} (${(s.fields ?? []).map((f) => f.toUpperCase()).join(' ')})`
        : s.kind.toUpperCase();
  if (nums && kind) return `${nums}.${kind}`;
  return nums || kind;
}

/** FETCH modifiers (RFC 7162): (CHANGEDSINCE n [VANISHED]). */
export interface FetchModifiers {
  changedSince: number | null;
  vanished: boolean;
}

export function parseFetchModifiers(tokens: Token[]): FetchModifiers {
  const out: FetchModifiers = { changedSince: null, vanished: false };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.t !== 'atom') throw new ImapParseError('Invalid FETCH modifier');
    const name = t.v.toUpperCase();
    if (name === 'CHANGEDSINCE') {
      const n = tokens[++i];
      if (!n || n.t !== 'atom' || !/^\d{1,19}$/.test(n.v)) throw new ImapParseError('CHANGEDSINCE needs a mod-sequence');
      out.changedSince = Number(n.v);
    } else if (name === 'VANISHED') {
      out.vanished = true;
    } else {
      throw new ImapParseError(`Unknown FETCH modifier "${name.slice(0, 30)}"`);
    }
  }
  if (out.vanished && out.changedSince === null) throw new ImapParseError('VANISHED needs CHANGEDSINCE');
  return out;
}
