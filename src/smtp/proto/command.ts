/*
 * SMTP command-line parser (RFC 5321 §4.1 plus the verbs of the extensions we offer). Pure: one decoded
 * line in, a typed command or a typed error out, naming the verb either way for statistics and for the
 * session's special cases (a BDAT whose size cannot be read means the byte stream cannot be resynchronised).
 * Addresses and parameters are parsed by address.ts and params.ts; nothing here knows session state
 * except whether the current transaction declared SMTPUTF8.
 */
import { parsePath, type AddressProblem, type Mailbox } from './address.js';
import { protoError, type ProtoError, type ProtoErrorKind } from './errors.js';
import { parseMailParams, parseRcptParams, type MailParams, type RcptParams } from './params.js';

/** RFC 5321 §4.5.3.1.4: 512 octets including the CRLF. */
export const COMMAND_LINE_LIMIT = 512;
/** RFC 4954 §4: a SASL response line may be up to 12288 octets. */
export const AUTH_LINE_LIMIT = 12288;

export type Command =
  | { verb: 'HELO'; domain: string }
  | { verb: 'EHLO'; domain: string }
  /** LMTP's greeting (RFC 2033 §4.1); the session refuses it on SMTP listeners */
  | { verb: 'LHLO'; domain: string }
  | { verb: 'MAIL'; sender: Mailbox | null; params: MailParams }
  | { verb: 'RCPT'; recipient: Mailbox; params: RcptParams }
  | { verb: 'BDAT'; size: number; last: boolean }
  | { verb: 'AUTH'; mechanism: string; initial: string | null }
  | { verb: 'VRFY'; argument: string }
  | { verb: 'HELP'; topic: string | null }
  | { verb: 'DATA' }
  | { verb: 'RSET' }
  | { verb: 'NOOP' }
  | { verb: 'QUIT' }
  | { verb: 'STARTTLS' }
  /** RFC 1985: start the queue for a domain, "@domain" (with its subdomains), or a named queue "#name" */
  | { verb: 'ETRN'; target: EtrnTarget };

export type EtrnTarget = { kind: 'domain'; domain: string; subdomains: boolean } | { kind: 'queue'; name: string };

export type Verb = Command['verb'];

export type ParsedLine =
  | { ok: true; command: Command }
  | { ok: false; /** upper-cased first word, or "UNKNOWN" */ verb: string; error: ProtoError };

export interface ParseOptions {
  /** the current transaction declared SMTPUTF8 (for RCPT) */
  smtputf8: boolean;
  /** an LMTP listener (the grammar is the same today: XQUEUEID is known on both protocols) */
  lmtp?: boolean;
}

const KNOWN = new Set(['HELO', 'EHLO', 'LHLO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'HELP', 'STARTTLS', 'AUTH', 'ETRN']);
const UNIMPLEMENTED = new Set(['EXPN', 'TURN', 'ATRN', 'SEND', 'SOML', 'SAML']);
/** RFC 1985 §5: a domain name (no address literal), one label at least, at most 255 octets */
const ETRN_DOMAIN = /^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
type NoArgumentVerb = 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS';
const NO_ARGUMENT = new Set<string>(['DATA', 'RSET', 'QUIT', 'STARTTLS'] satisfies NoArgumentVerb[]);
const HELO_ARG = /^[\x21-\x7e]{1,255}$/;

export function parseCommand(line: string, opts: ParseOptions): ParsedLine {
  const space = line.indexOf(' ');
  const word = (space < 0 ? line : line.slice(0, space)).toUpperCase();
  const arg = space < 0 ? '' : line.slice(space + 1);
  if (!KNOWN.has(word)) {
    const kind: ProtoErrorKind = UNIMPLEMENTED.has(word) ? 'unimplemented' : 'unknown_command';
    return { ok: false, verb: /^[A-Z]{1,12}$/.test(word) && kind === 'unimplemented' ? word : 'UNKNOWN', error: protoError(kind) };
  }
  const fail = (kind: ProtoErrorKind, text?: string): ParsedLine => ({ ok: false, verb: word, error: protoError(kind, text) });
  if (NO_ARGUMENT.has(word)) {
    return arg.trim() === '' ? { ok: true, command: { verb: word as NoArgumentVerb } } : fail('syntax', `Syntax: ${word}`);
  }
  switch (word) {
    case 'HELO':
    case 'EHLO':
    case 'LHLO':
      return HELO_ARG.test(arg.trim()) ? { ok: true, command: { verb: word, domain: arg.trim() } } : fail('syntax', `Syntax: ${word} hostname`);
    case 'MAIL':
      return parseMail(arg, fail);
    case 'RCPT':
      return parseRcpt(arg, opts, fail);
    case 'BDAT':
      return parseBdat(arg, fail);
    case 'AUTH':
      return parseAuth(arg, fail);
    case 'VRFY':
      return arg.trim() === '' ? fail('syntax', 'Syntax: VRFY address') : { ok: true, command: { verb: 'VRFY', argument: arg.trim() } };
    case 'HELP':
      return { ok: true, command: { verb: 'HELP', topic: arg.trim() || null } };
    case 'ETRN':
      return parseEtrn(arg.trim(), fail);
    default:
      return { ok: true, command: { verb: 'NOOP' } };
  }
}

type Fail = (kind: ProtoErrorKind, text?: string) => ParsedLine;

function addressFailure(problem: AddressProblem, role: 'sender' | 'recipient', fail: Fail): ParsedLine {
  if (problem === 'utf8') return fail('utf8_address');
  if (problem === 'source_route') return fail(`${role}_refused_form`, 'Source routes are not accepted');
  if (problem === 'unsafe_quoted') return fail(`${role}_refused_form`, 'Quoted local parts with "@", "%" or "!" are not accepted');
  return fail(`${role}_syntax`);
}

function parseMail(arg: string, fail: Fail): ParsedLine {
  const m = /^FROM: */i.exec(arg);
  if (!m) return fail('syntax', 'Syntax: MAIL FROM:<address>');
  const path = parsePath(arg.slice(m[0].length), { smtputf8: true, allowNull: true });
  if (!path.ok) return addressFailure(path.problem, 'sender', fail);
  const params = parseMailParams(path.rest);
  if (!params.ok) return { ok: false, verb: 'MAIL', error: params.error };
  if (path.mailbox?.utf8 && !params.value.smtputf8) return fail('utf8_address');
  return { ok: true, command: { verb: 'MAIL', sender: path.mailbox, params: params.value } };
}

function parseRcpt(arg: string, opts: ParseOptions, fail: Fail): ParsedLine {
  const m = /^TO: */i.exec(arg);
  if (!m) return fail('syntax', 'Syntax: RCPT TO:<address>');
  const path = parsePath(arg.slice(m[0].length), { smtputf8: true, allowPostmaster: true });
  if (!path.ok) return addressFailure(path.problem, 'recipient', fail);
  if (!path.mailbox) return fail('recipient_syntax');
  if (path.mailbox.utf8 && !opts.smtputf8) return fail('utf8_address');
  const params = parseRcptParams(path.rest);
  if (!params.ok) return { ok: false, verb: 'RCPT', error: params.error };
  return { ok: true, command: { verb: 'RCPT', recipient: path.mailbox, params: params.value } };
}

function parseBdat(arg: string, fail: Fail): ParsedLine {
  const m = /^(\d{1,15})( +LAST)? *$/i.exec(arg);
  if (!m) return fail('syntax', 'Syntax: BDAT count [LAST]');
  return { ok: true, command: { verb: 'BDAT', size: Number(m[1]), last: m[2] !== undefined } };
}

function parseEtrn(arg: string, fail: Fail): ParsedLine {
  const usage = (): ParsedLine => fail('syntax', 'Syntax: ETRN domain');
  if (arg.startsWith('#')) {
    const name = arg.slice(1);
    return /^[\x21-\x7e]{1,64}$/.test(name) ? { ok: true, command: { verb: 'ETRN', target: { kind: 'queue', name } } } : usage();
  }
  const subdomains = arg.startsWith('@');
  const domain = subdomains ? arg.slice(1) : arg;
  if (!ETRN_DOMAIN.test(domain)) return usage();
  return { ok: true, command: { verb: 'ETRN', target: { kind: 'domain', domain: domain.toLowerCase().replace(/\.$/, ''), subdomains } } };
}

function parseAuth(arg: string, fail: Fail): ParsedLine {
  const m = /^([A-Za-z0-9_-]{1,20})(?: +([A-Za-z0-9+/]+={0,2}|=))? *$/.exec(arg);
  if (!m) return fail('syntax', 'Syntax: AUTH mechanism [initial-response]');
  return { ok: true, command: { verb: 'AUTH', mechanism: m[1]!.toUpperCase(), initial: m[2] ?? null } };
}
