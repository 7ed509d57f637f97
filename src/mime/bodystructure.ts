/*
 * BODY and BODYSTRUCTURE (RFC 9051 §7.5.2) rendered from a stored structure. Media types, parameter
 * names, disposition types and encodings are upper-cased (as in the RFC's examples); values are sent as
 * written. Parts we left opaque (too deep, undecodable message/rfc822, multipart without parts) are
 * rendered as basic bodies of their own type, which keeps the grammar valid.
 */
import { renderEnvelope } from './envelope.js';
import { imapString, imapStringList } from './imap-string.js';
import type { Disposition, MessageStructure, MimePart, Param } from './types.js';

const upper = (s: string) => imapString(s.toUpperCase());

function params(ps: readonly Param[]): string {
  return ps.length > 0 ? `(${ps.map(([k, v]) => `${upper(k)} ${imapString(v)}`).join(' ')})` : 'NIL';
}

function disposition(d: Disposition | null): string {
  return d ? `(${upper(d.type)} ${params(d.params)})` : 'NIL';
}

function language(l: string[] | null): string {
  if (!l || l.length === 0) return 'NIL';
  return l.length === 1 ? imapString(l[0]!) : imapStringList(l);
}

function body(p: MimePart, extended: boolean): string {
  if (p.parts) {
    const ext = extended ? ` ${params(p.params)} ${disposition(p.disposition)} ${language(p.language)} ${imapString(p.location)}` : '';
    return `(${p.parts.map((c) => body(c, extended)).join('')} ${upper(p.subtype)}${ext})`;
  }
  const size = Math.max(0, p.end - p.bodyStart);
  let out = `${upper(p.type)} ${upper(p.subtype)} ${params(p.params)} ${imapString(p.id)} ${imapString(p.description)} ${upper(p.encoding ?? '7bit')} ${size}`;
  if (p.message) out += ` ${renderEnvelope(p.message.envelope)} ${body(p.message.root, extended)} ${p.lines}`;
  else if (p.type === 'text') out += ` ${p.lines}`;
  if (extended) out += ` ${imapString(p.md5)} ${disposition(p.disposition)} ${language(p.language)} ${imapString(p.location)}`;
  return `(${out})`;
}

export function imapBodyStructure(s: MessageStructure, extended: boolean): string {
  return body(s.root, extended);
}

export function imapEnvelope(s: MessageStructure): string {
  return renderEnvelope(s.envelope);
}
