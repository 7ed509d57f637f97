/*
 * Lexer for structured header values (RFC 5322 addresses, RFC 2045 Content-Type and friends): words,
 * quoted strings (unescaped), comments (kept, nesting), domain literals and special characters. Linear
 * in the input, never throws: an unterminated quote or comment runs to the end of the value.
 */

export type Token =
  | { kind: 'word'; value: string; quoted: boolean; spaceBefore: boolean }
  | { kind: 'special'; value: string; spaceBefore: boolean }
  | { kind: 'comment'; value: string; spaceBefore: boolean }
  | { kind: 'literal'; value: string; spaceBefore: boolean };

/** RFC 5322 specials (addresses) */
export const ADDRESS_SPECIALS = '()<>[]:;@\\,."';
/** RFC 2045 tspecials (Content-Type and parameters), plus '*' is allowed in tokens */
export const MIME_SPECIALS = '()<>@,;:\\"/[]?=';

export function tokenize(value: string, specials: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let space = false;
  const n = value.length;
  while (i < n) {
    const c = value[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
      continue;
    }
    if (c === '"') {
      const [text, next] = readQuoted(value, i + 1, '"');
      out.push({ kind: 'word', value: text, quoted: true, spaceBefore: space });
      i = next;
    } else if (c === '(') {
      const [text, next] = readComment(value, i + 1);
      out.push({ kind: 'comment', value: text, spaceBefore: space });
      i = next;
    } else if (c === '[' && specials === ADDRESS_SPECIALS) {
      const close = value.indexOf(']', i + 1);
      const end = close < 0 ? n : close + 1;
      out.push({ kind: 'literal', value: value.slice(i, end), spaceBefore: space });
      i = end;
    } else if (specials.includes(c)) {
      out.push({ kind: 'special', value: c, spaceBefore: space });
      i++;
    } else {
      let j = i + 1;
      while (j < n) {
        const d = value[j]!;
        if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === '"' || d === '(' || specials.includes(d)) break;
        j++;
      }
      out.push({ kind: 'word', value: value.slice(i, j), quoted: false, spaceBefore: space });
      i = j;
    }
    space = false;
  }
  return out;
}

function readQuoted(s: string, from: number, close: string): [string, number] {
  let out = '';
  let i = from;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
      continue;
    }
    if (c === close) return [out, i + 1];
    if (c !== '\r' && c !== '\n') out += c;
    i++;
  }
  return [out, i];
}

function readComment(s: string, from: number): [string, number] {
  let depth = 1;
  let out = '';
  let i = from;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return [out, i + 1];
    out += c;
    i++;
  }
  return [out, i];
}
