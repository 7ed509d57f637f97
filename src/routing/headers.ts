/*
 * Finds the addresses inside the address header fields of a message (RFC 5322 §3.4: mailboxes, groups,
 * display names, comments, folding) with their byte offsets, so header rewriting can replace exactly
 * those bytes and leave everything else — body, other fields, folding, RFC 2047 display names — as it
 * was. Pure. A field it cannot read with confidence (unbalanced quote, comment or angle bracket, an
 * obsolete spaced-out address) yields no addresses: it is left untouched, never half-rewritten.
 */

export type HeaderClass = 'sender' | 'recipient';

/** Postfix's header_opts: the fields cleanup treats as sender and recipient addresses. */
const CLASSES: Record<string, HeaderClass> = {
  from: 'sender',
  sender: 'sender',
  'reply-to': 'sender',
  'return-path': 'sender',
  'errors-to': 'sender',
  'return-receipt-to': 'sender',
  'disposition-notification-to': 'sender',
  'mail-followup-to': 'sender',
  'resent-from': 'sender',
  'resent-sender': 'sender',
  'resent-reply-to': 'sender',
  to: 'recipient',
  cc: 'recipient',
  bcc: 'recipient',
  'apparently-to': 'recipient',
  'resent-to': 'recipient',
  'resent-cc': 'recipient',
  'resent-bcc': 'recipient',
};

export function headerClass(name: string): HeaderClass | null {
  return CLASSES[name.toLowerCase()] ?? null;
}

export interface HeaderField {
  /** the field name as written (without trailing whitespace) */
  name: string;
  /** byte offset of the field's first byte */
  start: number;
  /** byte offset just after the colon */
  valueStart: number;
  /** byte offset just after the field's last line break (or the end of the content) */
  end: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The fields of the header section: it ends at the first empty line, or at a line that is neither a
 * field nor a continuation (such a line starts the body for us, as it does for Postfix's cleanup).
 */
export function headerFields(content: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = 0;
  let current: HeaderField | null = null;
  while (pos < content.length) {
    let nl = content.indexOf(LF, pos);
    const next = nl < 0 ? content.length : nl + 1;
    if (nl < 0) nl = content.length;
    const lineEnd = nl > pos && content[nl - 1] === CR ? nl - 1 : nl;
    if (lineEnd === pos) break;
    const first = content[pos]!;
    if (first === 0x20 || first === 0x09) {
      if (!current) break;
      current.end = next;
    } else {
      const colon = content.indexOf(0x3a, pos);
      if (colon < 0 || colon >= lineEnd) break;
      const name = content.toString('latin1', pos, colon).replace(/[ \t]+$/, '');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) break;
      current = { name, start: pos, valueStart: colon + 1, end: next };
      fields.push(current);
    }
    pos = next;
  }
  return fields;
}

/** One address found in a field: bytes [start, end) of the whole content are its addr-spec. */
export interface AddressSpan {
  start: number;
  end: number;
  address: string;
}

type Tok = { t: 'word' | 'qs' | 'lit'; start: number; end: number; gap: boolean } | { t: 'sp'; c: string; start: number; end: number; gap: boolean };

const MAX_COMMENT_DEPTH = 32;
const SPECIALS = '<>,:;@';

/** Tokenizes a field value (latin1, one char per byte); null when it is not well formed. */
function tokenize(s: string, base: number): Tok[] | null {
  const toks: Tok[] = [];
  let i = 0;
  let gap = false;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      gap = true;
      i++;
    } else if (c === '(') {
      let depth = 0;
      for (; i < s.length; i++) {
        const d = s[i]!;
        if (d === '\\') i++;
        else if (d === '(' && ++depth > MAX_COMMENT_DEPTH) return null;
        else if (d === ')' && --depth === 0) break;
      }
      if (depth !== 0) return null;
      i++;
      gap = true;
    } else if (c === '"' || c === '[') {
      const close = c === '"' ? '"' : ']';
      let j = i + 1;
      for (; j < s.length && s[j] !== close; j++) {
        if (s[j] === '\\') j++;
        else if (c === '[' && s[j] === '[') return null;
      }
      if (j >= s.length) return null;
      toks.push({ t: c === '"' ? 'qs' : 'lit', start: base + i, end: base + j + 1, gap });
      gap = false;
      i = j + 1;
    } else if (SPECIALS.includes(c)) {
      toks.push({ t: 'sp', c, start: base + i, end: base + i + 1, gap });
      gap = false;
      i++;
    } else if (c === ')' || c === ']' || c === '\\') {
      return null;
    } else {
      let j = i;
      while (j < s.length && !' \t\r\n()"[]\\'.includes(s[j]!) && !SPECIALS.includes(s[j]!)) j++;
      toks.push({ t: 'word', start: base + i, end: base + j, gap });
      gap = false;
      i = j;
    }
  }
  return toks;
}

/** The addr-spec of one mailbox's tokens, when it is contiguous local@domain; else null (left alone). */
function addrSpec(toks: Tok[], content: Buffer): AddressSpan | null {
  if (toks.length < 3) return null;
  const ats = toks.map((t, i) => (t.t === 'sp' && t.c === '@' ? i : -1)).filter((i) => i >= 0);
  if (ats.length !== 1) return null;
  const at = ats[0]!;
  if (at === 0 || at === toks.length - 1) return null;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (i > 0 && t.gap) return null;
    if (t.t === 'sp' && i !== at) return null;
    if (i > at && t.t === 'qs') return null;
    if (i < at && t.t === 'lit') return null;
  }
  const start = toks[0]!.start;
  const end = toks[toks.length - 1]!.end;
  return { start, end, address: content.toString('utf8', start, end) };
}

/**
 * The addresses of one address-list field value. Groups (`team: a@x, b@y;`), display names, comments
 * and route-addrs (`<a@x>`) are understood; a source route (`<@relay:a@x>`) or anything ambiguous is
 * skipped. Returns null for a field that is not well formed (the caller leaves it untouched).
 */
export function addressSpans(content: Buffer, field: HeaderField): AddressSpan[] | null {
  const toks = tokenize(content.toString('latin1', field.valueStart, field.end), field.valueStart);
  if (!toks) return null;
  const spans: AddressSpan[] = [];
  let bare: Tok[] = [];
  let angle: Tok[] | null = null;
  let closed: Tok[] | null = null;
  let inGroup = false;
  const endMailbox = (): boolean => {
    if (angle !== null) return false;
    const candidate = closed ?? bare;
    const span = closed !== null && candidate.some((t) => t.t === 'sp' && t.c === ':') ? null : addrSpec(candidate, content);
    if (span) spans.push(span);
    bare = [];
    closed = null;
    return true;
  };
  for (const tok of toks) {
    if (angle !== null) {
      if (tok.t === 'sp' && tok.c === '<') return null;
      if (tok.t === 'sp' && tok.c === '>') {
        closed = angle;
        angle = null;
      } else {
        angle.push(tok);
      }
      continue;
    }
    if (tok.t !== 'sp') {
      if (closed !== null) return null;
      bare.push(tok);
      continue;
    }
    switch (tok.c) {
      case '<':
        if (closed !== null) return null;
        angle = [];
        bare = [];
        break;
      case '>':
        return null;
      case ',':
        endMailbox();
        break;
      case ':':
        if (inGroup || closed !== null) return null;
        inGroup = true;
        bare = [];
        break;
      case ';':
        if (!inGroup) return null;
        endMailbox();
        inGroup = false;
        break;
      default:
        // '@' outside angle brackets belongs to a bare addr-spec
        if (closed !== null) return null;
        bare.push(tok);
    }
  }
  if (!endMailbox()) return null;
  return spans;
}

/** Replaces byte ranges of `content` (sorted, not overlapping) with new text; everything else is kept. */
export function replaceSpans(content: Buffer, replacements: readonly { start: number; end: number; text: string }[]): Buffer {
  if (replacements.length === 0) return content;
  const sorted = [...replacements].sort((a, b) => a.start - b.start);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const r of sorted) {
    if (r.start < pos || r.end < r.start || r.end > content.length) throw new RangeError('overlapping or out-of-range replacement');
    parts.push(content.subarray(pos, r.start), Buffer.from(r.text, 'utf8'));
    pos = r.end;
  }
  parts.push(content.subarray(pos));
  return Buffer.concat(parts);
}
