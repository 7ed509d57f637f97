/*
 * Section addressing for FETCH BODY[...] and BINARY[...] (RFC 9051 §6.4.5, RFC 3516): part numbers
 * resolved over the stored tree, including the rule that a message/rfc822 part's numbers continue into
 * the encapsulated message, and the bytes each specifier names. Offsets are clamped to the content,
 * so a structure that does not match its bytes yields wrong-but-bounded output, never an exception.
 */
import { decodeTransfer } from './decode.js';
import { headerFields } from './header.js';
import type { MessageStructure, MimePart } from './types.js';

export interface SectionSpec {
  /** part path, [] = whole message; [1,2] = "1.2" */
  part: number[];
  kind: 'all' | 'header' | 'header.fields' | 'header.fields.not' | 'text' | 'mime';
  fields?: string[];
}

/** The part a path names, or null. A non-multipart message (top level or encapsulated) has only part 1. */
export function resolvePart(s: MessageStructure, path: readonly number[]): MimePart | null {
  let cur = s.root;
  let atMessage = true;
  for (const k of path) {
    if (!Number.isSafeInteger(k) || k < 1) return null;
    if (!atMessage && cur.message) {
      cur = cur.message.root;
      atMessage = true;
    }
    if (cur.parts) {
      const next = cur.parts[k - 1];
      if (!next) return null;
      cur = next;
      atMessage = false;
    } else if (atMessage && k === 1) {
      atMessage = false;
    } else {
      return null;
    }
  }
  return cur;
}

function slice(content: Buffer, a: number, b: number): Buffer {
  const end = Math.min(Math.max(b, 0), content.length);
  return content.subarray(Math.min(Math.max(a, 0), end), end);
}

const CRLF = Buffer.from('\r\n');

/** HEADER.FIELDS / HEADER.FIELDS.NOT: the chosen fields as stored, then the blank line. */
function headerSubset(content: Buffer, root: MimePart, names: readonly string[], not: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const out: Buffer[] = [];
  const limit = Math.min(root.bodyStart, content.length);
  for (const f of headerFields(content, Math.min(root.headerStart, limit), limit)) {
    if (wanted.has(f.name.toLowerCase()) === not || (!not && f.valueStart < 0)) continue;
    out.push(content.subarray(f.start, f.end));
    if (content[f.end - 1] !== 0x0a) out.push(CRLF);
  }
  out.push(CRLF);
  return Buffer.concat(out);
}

/** The bytes of one message-level specifier applied to the message whose root is `root`. */
function messageSection(content: Buffer, root: MimePart, spec: SectionSpec, whole: boolean): Buffer | null {
  switch (spec.kind) {
    case 'all':
      return whole ? content : slice(content, root.headerStart, root.end);
    case 'header':
      return slice(content, root.headerStart, root.bodyStart);
    case 'text':
      return slice(content, root.bodyStart, root.end);
    case 'header.fields':
      return headerSubset(content, root, spec.fields ?? [], false);
    case 'header.fields.not':
      return headerSubset(content, root, spec.fields ?? [], true);
    case 'mime':
      return null;
  }
}

export function sectionBytes(content: Buffer, s: MessageStructure, spec: SectionSpec): Buffer | null {
  if (spec.part.length === 0) return messageSection(content, s.root, spec, true);
  const p = resolvePart(s, spec.part);
  if (!p) return null;
  if (spec.kind === 'all') return slice(content, p.bodyStart, p.end);
  if (spec.kind === 'mime') return slice(content, p.headerStart, p.bodyStart);
  // HEADER, HEADER.FIELDS[.NOT] and TEXT after a part number need an encapsulated message
  return p.message ? messageSection(content, p.message.root, spec, false) : null;
}

export function binaryBytes(content: Buffer, s: MessageStructure, part: number[]): Buffer | 'unknown-cte' | null {
  if (part.length === 0) return content;
  const p = resolvePart(s, part);
  if (!p) return null;
  const body = slice(content, p.bodyStart, p.end);
  if (p.parts || p.message) return body;
  return decodeTransfer(body, p.encoding) ?? 'unknown-cte';
}
