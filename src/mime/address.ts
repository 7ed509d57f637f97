/*
 * RFC 5322 address lists (with the obsolete forms real mail still uses: source routes, comments as
 * names, missing domains) turned into IMAP ENVELOPE addresses. Display names stay as written
 * (encoded-words undecoded, quotes removed): decoding is the client's job in IMAP. Never throws.
 */
import type { Address } from './types.js';
import { ADDRESS_SPECIALS, type Token, tokenize } from './tokens.js';

/** Placeholder host for an address written without a domain (a NIL host would mean a group). */
export const MISSING_DOMAIN = 'MISSING_DOMAIN';

const isSpecial = (t: Token, c: string) => t.kind === 'special' && t.value === c;

function phrase(tokens: Token[]): string | null {
  let out = '';
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (out !== '' && t.spaceBefore) out += ' ';
    out += t.value;
  }
  out = out.trim();
  return out === '' ? null : out;
}

function lastComment(tokens: Token[]): string | null {
  for (let i = tokens.length - 1; i >= 0; i--) {
    const t = tokens[i]!;
    if (t.kind === 'comment' && t.value.trim() !== '') return t.value.trim();
  }
  return null;
}

const joinTight = (tokens: Token[]) => tokens.map((t) => t.value).join('');

/** local@domain with an optional obsolete route `@a,@b:` in front. */
function addrSpec(all: Token[], name: string | null): Address {
  let tokens = all.filter((t) => t.kind !== 'comment');
  let adl: string | null = null;
  if (tokens[0] && isSpecial(tokens[0], '@')) {
    const colon = tokens.findIndex((t) => isSpecial(t, ':'));
    if (colon > 0) {
      adl = joinTight(tokens.slice(0, colon));
      tokens = tokens.slice(colon + 1);
    }
  }
  let at = -1;
  for (let i = tokens.length - 1; i >= 0; i--) if (isSpecial(tokens[i]!, '@')) (at = i), (i = -1);
  if (at < 0) {
    const local = phrase(tokens) ?? '';
    return [name, adl, local, local === '' ? '' : MISSING_DOMAIN];
  }
  const local = joinTight(tokens.slice(0, at));
  const domain = joinTight(tokens.slice(at + 1));
  return [name, adl, local, domain === '' ? MISSING_DOMAIN : domain];
}

/** The addresses of an address-list header value, groups bracketed as in IMAP; [] when there are none. */
export function parseAddressList(value: string): Address[] {
  const out: Address[] = [];
  let group = false;
  let cur: Token[] = [];
  let angle: Token[] | null = null;
  let inAngle = false;

  const flush = () => {
    if (angle !== null) {
      out.push(addrSpec(angle, phrase(cur) ?? lastComment(cur)));
    } else if (cur.some((t) => t.kind !== 'comment')) {
      out.push(addrSpec(cur, lastComment(cur)));
    }
    cur = [];
    angle = null;
    inAngle = false;
  };

  for (const t of tokenize(value, ADDRESS_SPECIALS)) {
    if (inAngle) {
      if (isSpecial(t, '>')) inAngle = false;
      else angle!.push(t);
      continue;
    }
    if (t.kind !== 'special') {
      cur.push(t);
      continue;
    }
    switch (t.value) {
      case ',':
        flush();
        break;
      case '<':
        angle = [];
        inAngle = true;
        break;
      case ':':
        if (!group && angle === null && !cur.some((x) => isSpecial(x, '@'))) {
          out.push([null, null, phrase(cur) ?? '', null]);
          group = true;
          cur = [];
        } else cur.push(t);
        break;
      case ';':
        flush();
        if (group) out.push([null, null, null, null]);
        group = false;
        break;
      default:
        cur.push(t);
    }
  }
  flush();
  if (group) out.push([null, null, null, null]);
  return out;
}
