/*
 * What SEARCH needs from a message's bytes: decoded header values (RFC 2047 encoded-words undone,
 * unfolded) and a case-insensitive substring test over decoded text (transfer encoding undone, charset
 * converted to UTF-8). Only text/* bodies are searched (attachments are not text); each header and
 * each body is tested on its own, so a match never spans two of them.
 *
 * Fast path (same answers, no text built): an ASCII needle in a body that is neither quoted-printable
 * nor base64 and reads as UTF-8 (or Latin-1 when it is not valid UTF-8) is looked for in the raw bytes,
 * ASCII case folded. Those bytes decode to the same ASCII characters, and no other character lowercases
 * to ASCII except U+0130 and U+212A: a body holding either one takes the slow path.
 */
import iconv from 'iconv-lite';
import libmime from 'libmime';
import { charsetText, decodeTransfer } from './decode.js';
import { bytesText, headerFields, unfold } from './header.js';
import { isIdentityEncoding } from './parse.js';
import type { MessageStructure, MimePart } from './types.js';

export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

function headerLimit(content: Buffer, root: MimePart): [number, number] {
  const b = Math.min(root.bodyStart, content.length);
  return [Math.min(root.headerStart, b), b];
}

export function headerValues(content: Buffer, s: MessageStructure, field: string): string[] {
  const name = field.toLowerCase();
  const [a, b] = headerLimit(content, s.root);
  return headerFields(content, a, b)
    .filter((f) => f.valueStart >= 0 && f.name.toLowerCase() === name)
    .map((f) => decodeWords(unfold(bytesText(content, f.valueStart, f.end)).trim()));
}

/** A header block as decoded "Name: value" lines. */
function headerText(content: Buffer, root: MimePart): string {
  const [a, b] = headerLimit(content, root);
  return headerFields(content, a, b)
    .map((f) => (f.valueStart < 0 ? bytesText(content, f.start, f.end) : `${f.name}: ${decodeWords(unfold(bytesText(content, f.valueStart, f.end)).trim())}`))
    .join('\n');
}

function bodyText(content: Buffer, p: MimePart): string | null {
  const a = Math.min(Math.max(p.bodyStart, 0), content.length);
  const body = content.subarray(a, Math.min(Math.max(p.end, a), content.length));
  const decoded = decodeTransfer(body, p.encoding);
  if (decoded === null) return null;
  const charset = p.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
  return charsetText(decoded, charset);
}

/** An ASCII needle, lowercased, ready for a case-folded byte search. */
interface ByteNeedle {
  lower: Uint8Array;
  /** position in the needle of the byte the search looks for first (the rarest in mail text) */
  at: number;
  /** that byte in lower and upper case (equal for a non-letter) */
  lo: number;
  up: number;
}

/** ASCII letters from common to rare in mail text: the search anchors on the rarest letter of the needle. */
const LETTER_ORDER = 'etaoinsrhldcumfpgwybvkxjqz';
const FOLD = new Uint8Array(256).map((_, b) => (b >= 0x41 && b <= 0x5a ? b + 0x20 : b));
/** UTF-8 of the only non-ASCII characters whose lowercase holds ASCII letters: U+0130 ("i̇"), U+212A ("k") */
const LOWERS_TO_ASCII = [Buffer.from([0xc4, 0xb0]), Buffer.from([0xe2, 0x84, 0xaa])];

function byteNeedle(lowered: string): ByteNeedle | null {
  if (!/^[\x00-\x7f]+$/.test(lowered)) return null;
  const lower = Buffer.from(lowered, 'latin1');
  let at = 0;
  let rank = -1;
  for (let k = 0; k < lower.length; k++) {
    const c = lower[k]!;
    // anything but a letter is rarer than any letter
    const r = c >= 0x61 && c <= 0x7a ? LETTER_ORDER.indexOf(String.fromCharCode(c)) : LETTER_ORDER.length;
    if (r > rank) {
      rank = r;
      at = k;
    }
  }
  const lo = lower[at]!;
  return { lower, at, lo, up: lo >= 0x61 && lo <= 0x7a ? lo - 0x20 : lo };
}

/** Whether `buf` holds the needle, ASCII case folded. */
function holdsFolded(buf: Buffer, n: ByteNeedle): boolean {
  const len = n.lower.length;
  const last = buf.length - len;
  if (last < 0) return false;
  // the anchor byte's occurrences, both cases, in order; each one a candidate start
  let lo = buf.indexOf(n.lo, n.at);
  let up = n.up === n.lo ? -1 : buf.indexOf(n.up, n.at);
  for (;;) {
    let p: number;
    if (lo >= 0 && (up < 0 || lo < up)) {
      p = lo;
      lo = buf.indexOf(n.lo, p + 1);
    } else if (up >= 0) {
      p = up;
      up = buf.indexOf(n.up, p + 1);
    } else {
      return false;
    }
    const start = p - n.at;
    if (start > last) return false;
    let k = 0;
    while (k < len && FOLD[buf[start + k]!] === n.lower[k]) k++;
    if (k === len) return true;
  }
}

/** Mirrors charsetText: these charsets read as UTF-8 (or Latin-1 when the bytes are not valid UTF-8). */
function readsAsUtf8(p: MimePart): boolean {
  const cs = p.params.find(([k]) => k.toLowerCase() === 'charset')?.[1]?.trim().toLowerCase() ?? '';
  return cs === '' || cs === 'us-ascii' || cs === 'ascii' || cs === 'utf-8' || cs === 'utf8' || !iconv.encodingExists(cs);
}

/** The fast path's answer for one body part, or null when only decoding the text can tell. */
function rawBodyHolds(content: Buffer, p: MimePart, n: ByteNeedle): boolean | null {
  if (!isIdentityEncoding(p.encoding) || !readsAsUtf8(p)) return null;
  const a = Math.min(Math.max(p.bodyStart, 0), content.length);
  // a view of the body alone, so no search runs on into the parts after it
  const body = content.subarray(a, Math.min(Math.max(p.end, a), content.length));
  if (holdsFolded(body, n)) return true;
  return LOWERS_TO_ASCII.some((special) => body.indexOf(special) >= 0) ? null : false;
}

/** Visits every text the search covers, stopping as soon as `test` says true. */
function anyText(content: Buffer, p: MimePart, headers: boolean, test: (text: string) => boolean, isMessageRoot: boolean, raw: ByteNeedle | null): boolean {
  if (headers && (isMessageRoot || p.bodyStart > p.headerStart) && test(headerText(content, p))) return true;
  if (p.parts) return p.parts.some((c) => anyText(content, c, headers, test, false, raw));
  if (p.message) return anyText(content, p.message.root, headers, test, true, raw);
  if (p.type !== 'text') return false;
  const fast = raw ? rawBodyHolds(content, p, raw) : null;
  if (fast !== null) return fast;
  const text = bodyText(content, p);
  return text !== null && test(text);
}

/** The needle of the last search, compiled (a SEARCH tests one needle against many messages). */
let compiled: { needle: string; want: string; raw: ByteNeedle | null } | null = null;

export function textContains(content: Buffer, s: MessageStructure, needle: string, where: 'body' | 'text'): boolean {
  if (compiled?.needle !== needle) {
    const want = needle.toLowerCase();
    compiled = { needle, want, raw: byteNeedle(want) };
  }
  const { want, raw } = compiled;
  if (want === '') return true;
  const test = (text: string) => text.toLowerCase().includes(want);
  if (where === 'body') {
    // BODY: text bodies only, at every level (an attached message's body counts, headers do not)
    return anyText(content, s.root, false, test, true, raw);
  }
  return anyText(content, s.root, true, test, true, raw);
}
