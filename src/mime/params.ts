/*
 * Content-Type, Content-Disposition and Content-Language values: media type, disposition type and
 * parameters with RFC 2231 continuations merged. Tolerant of what real mail does (unquoted values with
 * spaces or '=', stray semicolons, comments); returns null instead of throwing on nonsense.
 * Extended values are kept encoded (`name*` = charset'lang'%xx), as IMAP BODYSTRUCTURE carries them.
 */
import type { Param } from './types.js';
import { MIME_SPECIALS, type Token, tokenize } from './tokens.js';

export interface MediaType {
  type: string;
  subtype: string;
  params: Param[];
}

/** Splits the value at top-level ';' (quotes and comments are already tokens). */
function segments(tokens: Token[]): Token[][] {
  const out: Token[][] = [[]];
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (t.kind === 'special' && t.value === ';') out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out;
}

function joinTokens(tokens: Token[]): string {
  return tokens.map((t, i) => (i > 0 && t.spaceBefore ? ' ' : '') + t.value).join('');
}

const isToken = (t: Token | undefined): t is Token & { kind: 'word' } => t?.kind === 'word' && !t.quoted;

/** `type/subtype; params`, or null when the type is not syntactically a media type. */
export function parseMediaType(value: string): MediaType | null {
  const [head = [], ...rest] = segments(tokenize(value, MIME_SPECIALS));
  const [t, slash, s] = head;
  if (!isToken(t) || slash?.kind !== 'special' || slash.value !== '/' || !isToken(s)) return null;
  return { type: t.value.toLowerCase(), subtype: s.value.toLowerCase(), params: parseParams(rest) };
}

/** `type; params` of Content-Disposition, or null when there is no type token. */
export function parseDisposition(value: string): { type: string; params: Param[] } | null {
  const [head = [], ...rest] = segments(tokenize(value, MIME_SPECIALS));
  const t = head[0];
  if (!isToken(t) || head.length !== 1) return null;
  return { type: t.value.toLowerCase(), params: parseParams(rest) };
}

/** Content-Language: a comma-separated list of language tags; null when empty. */
export function parseLanguage(value: string): string[] | null {
  const out = tokenize(value, MIME_SPECIALS)
    .filter((t) => t.kind === 'word')
    .map((t) => t.value)
    .filter((v) => v.length > 0);
  return out.length > 0 ? out : null;
}

interface Section {
  index: number;
  extended: boolean;
  value: string;
}

interface Collected {
  name: string;
  plain: string | null;
  sections: Section[];
}

function parseParams(segs: Token[][]): Param[] {
  const byName = new Map<string, Collected>();
  for (const seg of segs) {
    const eq = seg.findIndex((t) => t.kind === 'special' && t.value === '=');
    const nameTok = seg[0];
    if (eq !== 1 || !isToken(nameTok)) continue;
    const value = joinTokens(seg.slice(2));
    const m = /^(.*?)\*(?:(\d{1,6})(\*)?)?$/.exec(nameTok.value);
    const base = m ? m[1]! : nameTok.value;
    if (base === '') continue;
    const key = base.toLowerCase();
    let c = byName.get(key);
    if (!c) byName.set(key, (c = { name: base, plain: null, sections: [] }));
    if (!m) {
      if (c.plain === null) c.plain = value;
    } else if (m[2] === undefined) {
      c.sections.push({ index: 0, extended: true, value });
    } else {
      c.sections.push({ index: Number(m[2]), extended: m[3] === '*', value });
    }
  }
  const out: Param[] = [];
  for (const c of byName.values()) {
    // senders often give both a plain and an RFC 2231 form (for old and new readers): keep both
    if (c.plain !== null) out.push([c.name, c.plain]);
    if (c.sections.length > 0) out.push(mergeSections(c));
  }
  return out;
}

/** RFC 2231 §3-4: sections in index order; an extended value keeps the `*` and encodes plain sections. */
function mergeSections(c: Collected): Param {
  const sections = [...c.sections].sort((a, b) => a.index - b.index);
  const seen = new Set<number>();
  const unique = sections.filter((s) => (seen.has(s.index) ? false : (seen.add(s.index), true)));
  const extended = unique[0]!.index === 0 && unique[0]!.extended;
  if (!extended) return [c.name, unique.map((s) => s.value).join('')];
  const value = unique.map((s, i) => (s.extended || i === 0 ? s.value : percentEncode(s.value))).join('');
  return [`${c.name}*`, value];
}

function percentEncode(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9!#$&+\-.^_`|~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
