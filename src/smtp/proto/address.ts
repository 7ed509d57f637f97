/*
 * RFC 5321 §4.1.2 paths and mailboxes (with RFC 6531 UTF-8 when the transaction declared SMTPUTF8).
 * Pure. Returns one canonical address string for policy and never reinterprets it: "%" and "!" are just
 * local-part characters, source routes and quoted local parts holding "@", "%" or "!" are refused, a
 * quoted local part that is not a plain dot-atom stays quoted (an opaque, unknown local part). The domain
 * is lower-cased (ASCII) and one trailing dot is removed so "example.test." cannot pass for another domain.
 */
import { isIP } from 'node:net';

export interface Mailbox {
  /** canonical form given to policy and stored in the envelope */
  address: string;
  local: string;
  /** null only for the special RCPT TO:<postmaster> */
  domain: string | null;
  /** the domain is an address literal such as [192.0.2.1] */
  literal: boolean;
  /** contains non-ASCII characters (only possible with SMTPUTF8) */
  utf8: boolean;
}

export type AddressProblem = 'syntax' | 'source_route' | 'unsafe_quoted' | 'utf8' | 'too_long';

export type PathResult =
  | { ok: true; mailbox: Mailbox | null; rest: string }
  | { ok: false; problem: AddressProblem };

export interface PathOptions {
  smtputf8: boolean;
  /** MAIL FROM:<> */
  allowNull?: boolean;
  /** RCPT TO:<postmaster> without a domain (RFC 5321 §4.5.1) */
  allowPostmaster?: boolean;
}

/** RFC 5321 §4.5.3.1.3, including the angle brackets */
export const MAX_PATH_OCTETS = 256;

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+$/u;
const LABEL = /^[A-Za-z0-9\u0080-\u{10ffff}](?:[A-Za-z0-9\u0080-\u{10ffff}-]*[A-Za-z0-9\u0080-\u{10ffff}])?$/u;
const NON_ASCII = /[^\x00-\x7f]/;

const fail = (problem: AddressProblem): PathResult => ({ ok: false, problem });

/** Parses "<...>" at the start of `text`; `rest` is what follows the ">" (parameters). */
export function parsePath(text: string, opts: PathOptions): PathResult {
  if (!text.startsWith('<')) return fail('syntax');
  const close = closingBracket(text);
  if (close < 0) return fail('syntax');
  const inner = text.slice(1, close);
  const rest = text.slice(close + 1);
  if (rest !== '' && !rest.startsWith(' ')) return fail('syntax');
  if (Buffer.byteLength(inner, 'utf8') + 2 > MAX_PATH_OCTETS) return fail('too_long');
  if (NON_ASCII.test(inner) && !opts.smtputf8) return fail('utf8');
  if (inner === '') return opts.allowNull ? { ok: true, mailbox: null, rest } : fail('syntax');
  if (inner.startsWith('@')) return fail(/^@[^:]*:/.test(inner) ? 'source_route' : 'syntax');
  if (opts.allowPostmaster && inner.toLowerCase() === 'postmaster') {
    return { ok: true, mailbox: { address: 'postmaster', local: 'postmaster', domain: null, literal: false, utf8: false }, rest };
  }
  const mailbox = parseMailbox(inner);
  return typeof mailbox === 'string' ? fail(mailbox) : { ok: true, mailbox, rest };
}

/** Index of the ">" closing the path, skipping quoted strings; -1 when there is none. */
function closingBracket(text: string): number {
  let quoted = false;
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) return i;
  }
  return -1;
}

export function parseMailbox(text: string): Mailbox | AddressProblem {
  const local = text.startsWith('"') ? parseQuotedLocal(text) : parseDotLocal(text);
  if (typeof local === 'string') return local;
  const domainText = text.slice(local.consumed + 1);
  if (text[local.consumed] !== '@') return 'syntax';
  const domain = domainText.startsWith('[') ? parseLiteral(domainText) : parseDomain(domainText);
  if (domain === null) return 'syntax';
  const address = `${local.value}@${domain}`;
  return { address, local: local.value, domain, literal: domain.startsWith('['), utf8: NON_ASCII.test(address) };
}

interface LocalPart {
  value: string;
  /** length of the local part in the input, so text[consumed] is the "@" */
  consumed: number;
}

function isDotAtom(s: string): boolean {
  return s.split('.').every((atom) => ATEXT.test(atom));
}

function parseDotLocal(text: string): LocalPart | AddressProblem {
  const at = text.indexOf('@');
  if (at <= 0) return 'syntax';
  const value = text.slice(0, at);
  return isDotAtom(value) ? { value, consumed: at } : 'syntax';
}

function parseQuotedLocal(text: string): LocalPart | AddressProblem {
  let content = '';
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // "%", "!" and "@" inside quotes are how relay checks used to be fooled: refuse outright.
      if (/[@%!]/.test(content)) return 'unsafe_quoted';
      const value = content !== '' && isDotAtom(content) ? content : `"${content.replace(/["\\]/g, '\\$&')}"`;
      return { value, consumed: i + 1 };
    }
    if (c === 0x5c) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 32 && next <= 126)) return 'syntax';
      content += text[i + 1];
      i++;
    } else if ((c >= 32 && c <= 126) || c > 127) {
      content += text[i];
    } else {
      return 'syntax';
    }
  }
  return 'syntax';
}

function parseDomain(text: string): string | null {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name === '' || Buffer.byteLength(name, 'utf8') > 255) return null;
  for (const label of name.split('.')) {
    if (!LABEL.test(label) || Buffer.byteLength(label, 'utf8') > 63) return null;
  }
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function parseLiteral(text: string): string | null {
  if (!text.endsWith(']')) return null;
  const body = text.slice(1, -1);
  if (isIP(body) === 4) return `[${body}]`;
  if (/^ipv6:/i.test(body) && isIP(body.slice(5)) === 6 && !body.includes('%')) return `[IPv6:${body.slice(5).toLowerCase()}]`;
  return null;
}
