/*
 * The pure half of `cartero sendmail`: Sendmail/Postfix-compatible option parsing (getopt-style,
 * bundled flags, the obsolete options scripts still pass) and turning the bytes a program wrote on
 * standard input into a queueable message: the "." terminator, CRLF line ends, -t recipient
 * extraction with Bcc removal, missing From/Date/Message-ID. No I/O; every refusal is a typed
 * SendmailError with its sysexits code, so nothing half-prepared is ever queued.
 */
import libmime from 'libmime';
import { parseMailbox } from '../smtp/proto/address.js';
import { rfc5322Date } from '../smtp/proto/trace.js';

/** sysexits.h */
export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOINPUT = 66;
export const EX_IOERR = 74;
export const EX_TEMPFAIL = 75;
export const EX_CONFIG = 78;

export class SendmailError extends Error {
  override readonly name = 'SendmailError';
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface SendmailOptions {
  /** -bm (default): queue a message; -bp: list the queue; -q: flush it; -bs: SMTP on standard input/output */
  mode: 'deliver' | 'list' | 'flush' | 'smtp';
  /** -t */
  extractRecipients: boolean;
  /** -i / -oi: a line with a single "." does not end the message */
  ignoreDots: boolean;
  /** -f / -r, as given (null: the invoking user) */
  sender: string | null;
  /** -F */
  fullName: string | null;
  /** command-line recipient arguments, as given */
  recipients: string[];
  /** -C / -c / --config */
  config: string | undefined;
  /** -v: log to standard error */
  verbose: boolean;
  /** -B 7BIT|8BITMIME */
  body: '7BIT' | '8BITMIME' | null;
  /** -N never | comma list of success,failure,delay (RFC 3461 NOTIFY) */
  notify: string[] | null;
  /** -R full|hdrs */
  ret: 'FULL' | 'HDRS' | null;
  /** -V envid */
  envid: string | null;
  help: boolean;
  /** options accepted for compatibility and ignored (for -v output) */
  ignored: string[];
}

/** getopt letters taking an argument (Postfix sendmail's set, plus -c for Cartero's config file). */
const WITH_ARG = new Set(['B', 'C', 'F', 'L', 'N', 'O', 'R', 'V', 'X', 'b', 'c', 'e', 'f', 'h', 'o', 'p', 'r']);
/** flags ignored as Postfix ignores them: -G gateway, -U initial submission, -m metoo, -n no aliasing, -x */
const IGNORED_FLAGS = new Set(['G', 'U', 'm', 'n', 'x']);

export function parseSendmailArgs(argv: readonly string[]): SendmailOptions {
  const o: SendmailOptions = {
    mode: 'deliver',
    extractRecipients: false,
    ignoreDots: false,
    sender: null,
    fullName: null,
    recipients: [],
    config: undefined,
    verbose: false,
    body: null,
    notify: null,
    ret: null,
    envid: null,
    help: false,
    ignored: [],
  };
  const usage = (msg: string): SendmailError => new SendmailError(EX_USAGE, msg);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      o.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help') {
      o.help = true;
      continue;
    }
    if (arg === '--config') {
      const v = argv[++i];
      if (v === undefined) throw usage('option --config requires a file name');
      o.config = v;
      continue;
    }
    if (arg.startsWith('--config=')) {
      o.config = arg.slice('--config='.length);
      continue;
    }
    if (arg.startsWith('--')) throw usage(`unknown option ${arg}`);
    if (!arg.startsWith('-') || arg === '-') {
      o.recipients.push(arg);
      continue;
    }
    if (arg.startsWith('-q')) {
      // -q: flush; -q<interval> (daemon mode) and -qR/-qS site selection are not ours to run
      if (arg !== '-q' && !/^-q\d+[smhdw]?$/.test(arg)) throw usage(`option ${arg} is not supported (use "cartero queue flush DOMAIN")`);
      o.mode = 'flush';
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j] ?? '';
      if (WITH_ARG.has(letter)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          const next = argv[++i];
          if (next === undefined) throw usage(`option -${letter} requires an argument`);
          value = next;
        }
        applyValue(o, letter, value);
        break;
      }
      if (letter === 't') o.extractRecipients = true;
      else if (letter === 'i') o.ignoreDots = true;
      else if (letter === 'v') o.verbose = true;
      else if (IGNORED_FLAGS.has(letter)) o.ignored.push(`-${letter}`);
      else if (letter === 'I') throw usage('option -I (newaliases) is not supported: aliases live in the directory ("cartero alias")');
      else throw usage(`unknown option -${letter}`);
    }
  }
  return o;
}

function applyValue(o: SendmailOptions, letter: string, value: string): void {
  const usage = (msg: string): SendmailError => new SendmailError(EX_USAGE, msg);
  switch (letter) {
    case 'f':
    case 'r':
      o.sender = value;
      return;
    case 'F':
      o.fullName = value;
      return;
    case 'C':
    case 'c':
      o.config = value;
      return;
    case 'b':
      if (value === 'm') o.mode = 'deliver';
      else if (value === 'p') o.mode = 'list';
      else if (value === 's') o.mode = 'smtp';
      else throw usage(`option -b${value} is not supported (supported: -bm, -bp, -bs)`);
      return;
    case 'o':
      // -oi as -i; -oA, -o7, -o8, -om, -od*, -oe* and the rest are ignored like Postfix ignores them
      if (value === 'i') o.ignoreDots = true;
      else o.ignored.push(`-o${value}`);
      return;
    case 'B': {
      const b = value.toUpperCase();
      if (b !== '7BIT' && b !== '8BITMIME') throw usage(`option -B: expected 7BIT or 8BITMIME, found "${value}"`);
      o.body = b;
      return;
    }
    case 'N': {
      const words = value.toUpperCase().split(',').map((w) => w.trim());
      const ok = (words.length === 1 && words[0] === 'NEVER') || words.every((w) => w === 'SUCCESS' || w === 'FAILURE' || w === 'DELAY');
      if (!ok || new Set(words).size !== words.length) throw usage(`option -N: expected "never" or a list of success,failure,delay; found "${value}"`);
      o.notify = words;
      return;
    }
    case 'R': {
      const r = value.toUpperCase();
      if (r !== 'FULL' && r !== 'HDRS') throw usage(`option -R: expected full or hdrs, found "${value}"`);
      o.ret = r;
      return;
    }
    case 'V':
      if (!/^[\x21-\x7e]{1,100}$/.test(value)) throw usage('option -V: expected an envelope id of 1 to 100 printable ASCII characters');
      o.envid = value;
      return;
    default:
      // -L label, -O option=value, -X logfile, -e mode, -h hopcount, -p protocol: accepted, ignored
      o.ignored.push(`-${letter} ${value}`);
  }
}

// ---------------------------------------------------------------- addresses

/**
 * The addr-specs of an RFC 5322 address list (display names, comments, groups and route prefixes
 * dropped). Throws a SendmailError (data error) for unbalanced quotes, comments or angle brackets.
 */
export function addressList(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let angle: string | null = null;
  let depth = 0;
  const flush = (): void => {
    const addr = (angle ?? current).trim().replace(/^(@[^:,]*(,@[^:,]*)*:)/, '');
    if (addr !== '') out.push(addr);
    current = '';
    angle = null;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '(') depth = 1;
    else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) if (text[j] === '\\') j++;
      if (j >= text.length) throw new SendmailError(EX_DATAERR, `unterminated quoted string in address list: ${text.slice(0, 80)}`);
      current += text.slice(i, j + 1);
      i = j;
    } else if (c === '<') {
      const close = text.indexOf('>', i);
      if (close < 0) throw new SendmailError(EX_DATAERR, `unterminated <...> in address list: ${text.slice(0, 80)}`);
      angle = text.slice(i + 1, close);
      i = close;
    } else if (c === ':' && angle === null && !current.includes('@')) {
      current = ''; // group name
    } else if (c === ',' || c === ';') {
      flush();
    } else if (c === '[') {
      const close = text.indexOf(']', i);
      if (close < 0) throw new SendmailError(EX_DATAERR, `unterminated domain literal in address list: ${text.slice(0, 80)}`);
      current += text.slice(i, close + 1);
      i = close;
    } else if (!/\s/.test(c)) {
      current += c;
    }
  }
  if (depth > 0) throw new SendmailError(EX_DATAERR, `unterminated comment in address list: ${text.slice(0, 80)}`);
  flush();
  return out;
}

/** An address as the queue stores it: syntax checked, domain lowercased; a bare user name gets `@hostname`. */
export function canonicalAddress(text: string, hostname: string, code: number): string {
  const bare = text.trim().replace(/^<(.*)>$/, '$1');
  const full = bare.includes('@') ? bare : `${bare}@${hostname}`;
  const m = parseMailbox(full);
  if (typeof m === 'string' || Buffer.byteLength(m.address) > 254) throw new SendmailError(code, `bad address syntax: <${bare.slice(0, 100)}>`);
  return m.address;
}

// ---------------------------------------------------------------- the message

export interface PrepareOptions {
  ignoreDots: boolean;
  extractRecipients: boolean;
  /** envelope sender after -f (already canonical; "" for the null sender) */
  sender: string;
  fullName: string | null;
  hostname: string;
  /** the invoking user, for Received: */
  user: string;
  uid: number | null;
  now: number;
  /** unique part of a generated Message-ID */
  uniqueId: string;
  sizeLimit: number;
}

export interface PreparedMessage {
  content: Buffer;
  /** addresses found in To/Cc/Bcc (or Resent-*) with -t, canonical */
  headerRecipients: string[];
  eightBit: boolean;
}

const CR = 0x0d;
const LF = 0x0a;

/** Cuts the input at a line holding a single "." (unless -i), refuses NUL and bare CR, and returns CRLF lines. */
export function inputLines(raw: Buffer, ignoreDots: boolean): Buffer[] {
  if (raw.includes(0)) throw new SendmailError(EX_DATAERR, 'message contains a NUL character; not queued');
  const lines: Buffer[] = [];
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(LF, start);
    const last = end < 0;
    if (last) end = raw.length;
    const lineEnd = end > start && raw[end - 1] === CR ? end - 1 : end;
    const line = raw.subarray(start, lineEnd);
    if (line.includes(CR)) throw new SendmailError(EX_DATAERR, `bare CR (carriage return not followed by a line feed) in line ${lines.length + 1}; not queued`);
    if (!ignoreDots && line.length === 1 && line[0] === 0x2e) return lines;
    lines.push(line);
    start = end + 1;
  }
  return lines;
}

const FIELD = /^[\x21-\x39\x3b-\x7e]+:/;

interface Field {
  name: string;
  lines: Buffer[];
}

function splitHeader(lines: Buffer[]): { fields: Field[]; body: Buffer[] } {
  const fields: Field[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i] ?? Buffer.alloc(0);
    if (line.length === 0) {
      i++;
      break;
    }
    const first = line[0];
    const last = fields[fields.length - 1];
    if ((first === 0x20 || first === 0x09) && last) {
      last.lines.push(line);
      continue;
    }
    const text = line.toString('latin1');
    if (!FIELD.test(text)) break; // no header section (or it ended without an empty line): the rest is body
    fields.push({ name: text.slice(0, text.indexOf(':')).trimEnd().toLowerCase(), lines: [line] });
  }
  return { fields, body: lines.slice(i) };
}

function fieldValue(f: Field): string {
  const text = Buffer.concat(f.lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from(' '), l]))).toString('utf8');
  return text.slice(text.indexOf(':') + 1);
}

/** `Full Name <addr>` with the name quoted or RFC 2047-encoded as needed. */
function fromField(sender: string, fullName: string | null): string {
  const name = (fullName ?? '').replace(/[\x00-\x1f\x7f]/g, ' ').replace(/\s+/g, ' ').trim();
  if (name === '') return `From: ${sender}\r\n`;
  const display = /[^\x20-\x7e]/.test(name) ? libmime.encodeWord(name, 'Q', 52) : /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$/.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
  return libmime.foldLines(`From: ${display} <${sender}>`, 76) + '\r\n';
}

export function prepareMessage(raw: Buffer, o: PrepareOptions): PreparedMessage {
  const { fields, body } = splitHeader(inputLines(raw, o.ignoreDots));
  const headerRecipients: string[] = [];
  let kept = fields;
  if (o.extractRecipients) {
    const resent = fields.some((f) => f.name === 'resent-to' || f.name === 'resent-cc' || f.name === 'resent-bcc');
    const names = resent ? ['resent-to', 'resent-cc', 'resent-bcc'] : ['to', 'cc', 'bcc'];
    for (const f of fields.filter((x) => names.includes(x.name))) {
      for (const a of addressList(fieldValue(f))) headerRecipients.push(canonicalAddress(a, o.hostname, EX_DATAERR));
    }
    kept = fields.filter((f) => f.name !== (resent ? 'resent-bcc' : 'bcc'));
  }
  const present = new Set(kept.map((f) => f.name));
  const date = rfc5322Date(new Date(o.now));
  let added = `Received: by ${o.hostname} (Cartero sendmail${o.uid !== null ? `, from userid ${o.uid}` : ''});\r\n\t${date}\r\n`;
  const head: string[] = [];
  if (!present.has('from')) head.push(fromField(o.sender === '' ? `MAILER-DAEMON@${o.hostname}` : o.sender, o.fullName));
  if (!present.has('date')) head.push(`Date: ${date}\r\n`);
  if (!present.has('message-id')) head.push(`Message-ID: <${o.uniqueId}@${o.hostname}>\r\n`);
  added += head.join('');
  const crlf = Buffer.from('\r\n');
  const parts: Buffer[] = [Buffer.from(added, 'utf8')];
  for (const f of kept) for (const l of f.lines) parts.push(l, crlf);
  parts.push(crlf);
  for (const l of body) parts.push(l, crlf);
  const content = Buffer.concat(parts);
  if (content.length > o.sizeLimit) {
    throw new SendmailError(EX_DATAERR, `message of ${content.length} bytes exceeds the limit of ${o.sizeLimit} bytes (smtp.message_size_limit); not queued`);
  }
  return { content, headerRecipients, eightBit: content.some((b) => b > 0x7f) };
}
