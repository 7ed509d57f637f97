/*
 * What SEARCH needs from a message's bytes: decoded header values (RFC 2047 encoded-words undone,
 * unfolded) and a case-insensitive substring test over decoded text (transfer encoding undone, charset
 * converted to UTF-8). Only text/* bodies are searched (attachments are not text); each header and
 * each body is tested on its own, so a match never spans two of them.
 */
import libmime from 'libmime';
import { charsetText, decodeTransfer } from './decode.js';
import { bytesText, headerFields, unfold } from './header.js';
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

/** Visits every text the search covers, stopping as soon as `test` says true. */
function anyText(content: Buffer, p: MimePart, headers: boolean, test: (text: string) => boolean, isMessageRoot: boolean): boolean {
  if (headers && (isMessageRoot || p.bodyStart > p.headerStart) && test(headerText(content, p))) return true;
  if (p.parts) return p.parts.some((c) => anyText(content, c, headers, test, false));
  if (p.message) return anyText(content, p.message.root, headers, test, true);
  if (p.type !== 'text') return false;
  const text = bodyText(content, p);
  return text !== null && test(text);
}

export function textContains(content: Buffer, s: MessageStructure, needle: string, where: 'body' | 'text'): boolean {
  const want = needle.toLowerCase();
  if (want === '') return true;
  const test = (text: string) => text.toLowerCase().includes(want);
  if (where === 'body') {
    // BODY: text bodies only, at every level (an attached message's body counts, headers do not)
    return anyText(content, s.root, false, test, true);
  }
  return anyText(content, s.root, true, test, true);
}
