/*
 * RFC 3464 delivery status notifications, built the way Postfix's bounce(8) writes them: a
 * multipart/report with a human-readable notice, a message/delivery-status part and the returned
 * original (whole for RET=FULL failures when it is small and clean enough, headers otherwise). Pure:
 * the entry, per-recipient results, names and time go in, bytes come out. It decides nothing about
 * whether a notice is wanted (dsn-notify.ts applies NOTIFY and the null-sender rule) and never throws
 * for odd input: hostile text in reasons or addresses is sanitised so the headers stay RFC 5322 clean.
 */
import { rfc5322Date } from '../smtp/proto/trace.js';
import { encodeXtext } from '../smtp/proto/xtext.js';

export type DsnKind = 'failure' | 'delay' | 'success';
/** RFC 3464 §2.3.3 */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** the final recipient address */
  address: string;
  /** RFC 3461 ORCPT as queued ("type;address") */
  orcpt?: string | null;
  /** the address it was expanded from (an alias), shown as "(expanded from ...)" and as Original-Recipient without ORCPT */
  original?: string | null;
  action: DsnAction;
  /** "x.y.z"; taken from the reason when omitted */
  status?: string;
  /** the delivery error or success text, e.g. "550 5.1.1 <x>: user unknown" */
  reason: string;
  /** the host whose reply is in the reason; found in "host NAME[addr] said: ..." when omitted */
  remoteMta?: string | null;
  /** default: `now` */
  lastAttempt?: number;
}

export interface DsnEntry {
  id: string;
  sender: string;
  meta: Record<string, unknown>;
  receivedAt: number;
}

export interface DsnRequest {
  entry: DsnEntry;
  recipients: DsnRecipient[];
  /** our host name: Reporting-MTA, From: MAILER-DAEMON@…, Message-ID */
  reportingMta: string;
  now: number;
  kind: DsnKind;
  /** the original message; without it the report has no third part */
  returnContent?: Buffer;
  /** bytes of the original returned at most (Postfix's bounce_size_limit); default 50000 */
  returnLimit?: number;
  /** for delay notices: when the message will be given up (Will-Retry-Until and the warning text) */
  retryUntil?: number;
  /** unique part of the Message-ID; default `<entry id>.<kind>.<now>` */
  uniqueId?: string;
  /** the report's recipient; default the envelope sender */
  to?: string;
  /**
   * Postfix's double bounce: `entry` is one of our own notices that could not be delivered, reported to
   * the postmaster (`to`) with the notice returned whole when it fits the limit.
   */
  postmasterCopy?: boolean;
}

export interface Dsn {
  /** the null sender: a notification is never bounced */
  sender: '';
  recipients: [string];
  content: Buffer;
  /** envelope details for the queue entry of the notification */
  meta: { dsn: DsnKind; original_queue_id: string; body: '7BIT' | '8BITMIME'; smtputf8: boolean };
}

export const DEFAULT_RETURN_LIMIT = 50_000;
/** longest reason or address text written into one line (keeps every line well under 998 octets) */
const TEXT_MAX = 800;
const CRLF = '\r\n';
const NON_ASCII = /[^\x00-\x7f]/;

const SUBJECTS: Record<DsnKind, string> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

// ---------------------------------------------------------------- status and diagnostic from a reason

const ENHANCED = /(?:^|[\s(\[])([245])\.(\d{1,3})\.(\d{1,3})(?=$|[\s)\]:;,.])/;
const REPLY_START = /^([245])\d\d(?:[ -]|$)/;
// the SMTP client's wording: "[<rcpt>: ]host mx.example[192.0.2.1]:25 said: 550 ... (in reply to RCPT TO command)"
const SAID = /^(?:<[^>]*>: )?host ([A-Za-z0-9.-]+)(?:\[[^\]\s]*\](?::\d+)?)? said: (.*)$/s;

const DEFAULT_STATUS: Record<DsnAction, string> = {
  failed: '5.0.0',
  delayed: '4.0.0',
  delivered: '2.0.0',
  relayed: '2.0.0',
  expanded: '2.0.0',
};

/** The RFC 3463 status for a result: the enhanced code in the reason, else the reply class, else by action. */
export function statusOf(reason: string, action: DsnAction): string {
  const wantClass = action === 'failed' ? null : action === 'delayed' ? '4' : '2';
  const m = ENHANCED.exec(reason);
  let status = m ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : null;
  if (!status) {
    const r = REPLY_START.exec(replyOf(reason) ?? '');
    if (r) status = `${r[1]}.0.0`;
  }
  if (!status) return DEFAULT_STATUS[action];
  // a failure may carry 4.x.x (given up after retrying); the other actions have one class each
  if (wantClass !== null && status[0] !== wantClass) return action === 'delayed' ? `4${status.slice(1)}` : DEFAULT_STATUS[action];
  return status;
}

/** The remote SMTP reply a reason holds ("550 5.1.1 ..." or "host X[a] said: 550 ... (in reply to ...)"), or null. */
export function replyOf(reason: string): string | null {
  const said = SAID.exec(reason);
  if (said) return (said[2] ?? '').replace(/\s*\(in reply to [^)]*\)\s*$/, '');
  return REPLY_START.test(reason) ? reason : null;
}

function remoteMtaOf(r: DsnRecipient): string | null {
  if (r.remoteMta) return r.remoteMta;
  return SAID.exec(r.reason)?.[1] ?? null;
}

// ---------------------------------------------------------------- text hygiene

/** One line of text: no controls, whitespace collapsed, bounded; non-ASCII replaced unless `utf8`. */
function oneLine(text: string, utf8: boolean, max = TEXT_MAX): string {
  let s = text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (!utf8) s = s.replace(/[^\x00-\x7f]/gu, '?');
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** `Name: value` folded at white space so lines stay near 78 characters (RFC 5322 §2.2.3). */
export function foldField(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let empty = true;
  for (const w of value.split(' ').filter((x) => x !== '')) {
    if (!empty && line.length + 1 + w.length > 78) {
      lines.push(line);
      line = `\t${w}`;
    } else {
      line += ` ${w}`;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join(CRLF) + CRLF;
}

/** An address for a DSN field: raw in a global (SMTPUTF8) report, else ASCII with xtext for anything else (RFC 6533 §3). */
function fieldAddress(address: string, global: boolean): string {
  const clean = oneLine(address, true, 512);
  if (global || !NON_ASCII.test(clean)) return clean;
  return encodeXtext(clean);
}

/** Original-Recipient from ORCPT "type;address" (or the alias it came from, as Postfix does). */
function originalRecipientField(r: DsnRecipient, global: boolean): string | null {
  const orcpt = r.orcpt ?? null;
  if (orcpt) {
    const semi = orcpt.indexOf(';');
    if (semi > 0) return `${orcpt.slice(0, semi).toLowerCase()};${fieldAddress(orcpt.slice(semi + 1), global)}`;
  }
  return r.original ? `rfc822;${fieldAddress(r.original, global)}` : null;
}

// ---------------------------------------------------------------- the returned original

/** Every line ends in CRLF, no NUL, no line longer than 998 octets: safe to return as a message. */
export function lineClean(content: Buffer): boolean {
  let lineStart = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i];
    if (b === 0) return false;
    if (b === 0x0d && content[i + 1] !== 0x0a) return false;
    if (b === 0x0a) {
      if (i === 0 || content[i - 1] !== 0x0d) return false;
      if (i - 1 - lineStart > 998) return false;
      lineStart = i + 1;
    }
  }
  return content.length - lineStart <= 998;
}

function has8bit(content: Buffer): boolean {
  for (const b of content) if (b > 0x7f) return true;
  return false;
}

/** The header section without the empty line that ends it; a message without one is all header. */
export function headerSection(content: Buffer): Buffer {
  if (content.subarray(0, 2).toString('latin1') === '\r\n') return Buffer.alloc(0);
  const end = content.indexOf('\r\n\r\n');
  return end < 0 ? content : content.subarray(0, end + 2);
}

/** Header bytes normalised to CRLF lines without NUL, cut at the last whole line within `limit`. */
function cleanHeaders(headers: Buffer, limit: number): { bytes: Buffer; truncated: boolean } {
  const text = headers.toString('latin1').replace(/\0/g, '').replace(/\r\n|\r|\n/g, '\n');
  const lines = text.split('\n').filter((l, i, all) => !(i === all.length - 1 && l === ''));
  const out: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for (const line of lines) {
    const bytes = Buffer.from(`${line.length > 998 ? line.slice(0, 998) : line}\r\n`, 'latin1');
    if (size + bytes.length > limit) {
      truncated = true;
      break;
    }
    out.push(bytes);
    size += bytes.length;
  }
  return { bytes: Buffer.concat(out), truncated };
}

interface ReturnedPart {
  headers: string;
  body: Buffer;
  eightBit: boolean;
  note: string | null;
}

function returnedPart(req: DsnRequest, global: boolean): ReturnedPart | null {
  const content = req.returnContent;
  if (!content) return null;
  const limit = Math.max(0, req.returnLimit ?? DEFAULT_RETURN_LIMIT);
  const full = req.kind === 'failure' && (req.postmasterCopy === true || String(req.entry.meta.ret ?? '').toUpperCase() === 'FULL');
  const what = req.kind === 'failure' ? 'Undelivered' : req.kind === 'delay' ? 'Delayed' : 'Delivered';
  if (full && content.length <= limit && req.entry.meta.body !== 'BINARYMIME' && lineClean(content)) {
    const eightBit = has8bit(content);
    const type = global ? 'message/global' : 'message/rfc822';
    return {
      headers: `Content-Description: ${what} Message${CRLF}Content-Type: ${type}${CRLF}Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}${CRLF}`,
      body: content,
      eightBit,
      note: null,
    };
  }
  const { bytes, truncated } = cleanHeaders(headerSection(content), limit);
  const eightBit = has8bit(bytes);
  const type = global ? 'message/global-headers' : 'text/rfc822-headers';
  let note: string | null = null;
  if (full) note = `The original message (${content.length} bytes) could not be returned in full; only its headers are attached.`;
  if (truncated) note = `The headers of the original message were cut at ${limit} bytes.`;
  return {
    headers: `Content-Description: ${what} Message Headers${CRLF}Content-Type: ${type}${CRLF}Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}${CRLF}`,
    body: bytes,
    eightBit,
    note,
  };
}

// ---------------------------------------------------------------- the three parts

function duration(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 24 ? `${(h / 24).toFixed(1)} days` : `${h.toFixed(1)} hours`;
}

function humanText(req: DsnRequest, global: boolean, note: string | null): string {
  const host = oneLine(req.reportingMta, false, 255);
  const lines: string[] = [`This is the mail system at host ${host}.`, ''];
  if (req.postmasterCopy === true) {
    lines.push(
      'A delivery status notification that this system generated could not',
      'be delivered to its recipient, the sender of the original message.',
      'The notification is attached below; no further notice will be sent.',
    );
  } else if (req.kind === 'failure') {
    lines.push(
      "I'm sorry to have to inform you that your message could not",
      "be delivered to one or more recipients. It's attached below.",
      '',
      'For further assistance, please send mail to postmaster.',
      '',
      'If you do so, please include this problem report. You can',
      'delete your own text from the attached returned message.',
    );
  } else if (req.kind === 'delay') {
    lines.push(
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      `Your message could not be delivered for ${duration(req.now - req.entry.receivedAt)}.`,
    );
    if (req.retryUntil !== undefined) lines.push(`It will be retried until it is ${duration(req.retryUntil - req.entry.receivedAt)} old.`);
    lines.push('', 'For further assistance, please send mail to postmaster.');
  } else {
    lines.push(
      'Your message was successfully delivered to the destination(s)',
      'listed below. If the message was delivered to mailbox you will',
      'receive no further notifications. Otherwise you may still receive',
      'notifications of mail delivery errors from other systems.',
    );
  }
  lines.push('', '                   The mail system', '');
  for (const r of req.recipients) {
    const from = r.original ? ` (expanded from <${oneLine(r.original, global, 300)}>)` : '';
    lines.push(`<${oneLine(r.address, global, 300)}>${from}: ${oneLine(r.reason, global)}`);
  }
  if (note) lines.push('', note);
  return lines.join(CRLF) + CRLF;
}

function statusFields(req: DsnRequest, global: boolean): string {
  const meta = req.entry.meta;
  let perMessage = '';
  if (typeof meta.envid === 'string' && meta.envid !== '') perMessage += foldField('Original-Envelope-Id', encodeXtext(oneLine(meta.envid, true, 100)));
  perMessage += foldField('Reporting-MTA', `dns; ${oneLine(req.reportingMta, false, 255)}`);
  perMessage += foldField('X-Cartero-Queue-ID', oneLine(req.entry.id, false, 64));
  perMessage += foldField('X-Cartero-Sender', `rfc822; ${req.entry.sender === '' ? '<>' : fieldAddress(req.entry.sender, global)}`);
  perMessage += foldField('Arrival-Date', rfc5322Date(new Date(req.entry.receivedAt)));
  const groups = req.recipients.map((r) => {
    let g = '';
    const original = originalRecipientField(r, global);
    if (original) g += foldField('Original-Recipient', original);
    g += foldField('Final-Recipient', `rfc822; ${fieldAddress(r.address, global)}`);
    g += foldField('Action', r.action);
    g += foldField('Status', r.status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : statusOf(r.reason, r.action));
    const remote = remoteMtaOf(r);
    if (remote) g += foldField('Remote-MTA', `dns; ${oneLine(remote, false, 255)}`);
    const reply = replyOf(r.reason);
    if (reply !== null) g += foldField('Diagnostic-Code', `smtp; ${oneLine(reply, global)}`);
    else if (r.action === 'failed' || r.action === 'delayed') g += foldField('Diagnostic-Code', `X-Cartero; ${oneLine(r.reason, global)}`);
    g += foldField('Last-Attempt-Date', rfc5322Date(new Date(r.lastAttempt ?? req.now)));
    if (r.action === 'delayed' && req.retryUntil !== undefined) g += foldField('Will-Retry-Until', rfc5322Date(new Date(req.retryUntil)));
    return g;
  });
  return [perMessage, ...groups].join(CRLF);
}

function base64Lines(text: string): string {
  return (Buffer.from(text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join(CRLF) + CRLF;
}

/** A boundary found in none of the parts. */
function boundaryFor(base: string, parts: Buffer[]): string {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? base : `${base}=${n}`;
    if (!parts.some((p) => p.includes(`--${candidate}`))) return candidate;
  }
}

// ---------------------------------------------------------------- the report

/** The notification for `req`, or null when there is nothing to report (null sender, no recipient). */
export function buildDsn(req: DsnRequest): Dsn | null {
  const { entry } = req;
  const to = req.to ?? entry.sender;
  if (to === '' || req.recipients.length === 0) return null;
  const global = entry.meta.smtputf8 === true || NON_ASCII.test(to) || NON_ASCII.test(entry.sender) || req.recipients.some((r) => NON_ASCII.test(r.address));
  const host = oneLine(req.reportingMta, false, 255).replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';

  const returned = returnedPart(req, global);
  const text = humanText(req, global, returned?.note ?? null);
  const textAscii = !NON_ASCII.test(text);
  const textPart = Buffer.from(
    'Content-Description: Notification' + CRLF +
      'Content-Type: text/plain; charset=utf-8' + CRLF +
      (textAscii || global ? `Content-Transfer-Encoding: ${textAscii ? '7bit' : '8bit'}${CRLF}${CRLF}${text}` : `Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(text)}`),
    'utf8',
  );
  const status = statusFields(req, global);
  const statusPart = Buffer.from(
    'Content-Description: Delivery report' + CRLF +
      `Content-Type: ${global ? 'message/global-delivery-status' : 'message/delivery-status'}${CRLF}` +
      (NON_ASCII.test(status) ? `Content-Transfer-Encoding: 8bit${CRLF}` : '') +
      CRLF +
      status,
    'utf8',
  );
  const returnedBytes = returned ? Buffer.concat([Buffer.from(returned.headers + CRLF, 'latin1'), returned.body]) : null;
  const parts = returnedBytes ? [textPart, statusPart, returnedBytes] : [textPart, statusPart];
  // RFC 2046 bchars, at most 70 in all
  const boundary = boundaryFor(`${entry.id.replace(/[^A-Za-z0-9]/g, '').slice(0, 20)}.${req.now}/${host.slice(0, 30)}`, parts);

  const uniqueId = req.uniqueId ?? `${entry.id}.${req.kind}.${req.now}`;
  const global8 = global || returned?.eightBit === true || NON_ASCII.test(status);
  const head =
    foldField('Date', rfc5322Date(new Date(req.now))) +
    foldField('From', `MAILER-DAEMON@${host} (Mail Delivery System)`) +
    foldField('Subject', req.postmasterCopy === true ? `Postmaster Copy: ${SUBJECTS[req.kind]}` : SUBJECTS[req.kind]) +
    foldField('To', fieldAddress(to, global)) +
    foldField('Auto-Submitted', 'auto-replied') +
    foldField('Message-ID', `<${oneLine(uniqueId, false, 200).replace(/[^A-Za-z0-9.$+=_-]/g, '_')}@${host}>`) +
    'MIME-Version: 1.0' + CRLF +
    `Content-Type: multipart/report; report-type=delivery-status;${CRLF}\tboundary="${boundary}"${CRLF}` +
    `Content-Transfer-Encoding: ${global8 ? '8bit' : '7bit'}${CRLF}` +
    CRLF +
    `This is a MIME-encapsulated message.${CRLF}${CRLF}`;
  const chunks: Buffer[] = [Buffer.from(head, 'utf8')];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}${CRLF}`, 'latin1'), p);
    if (p[p.length - 1] !== 0x0a) chunks.push(Buffer.from(CRLF));
    chunks.push(Buffer.from(CRLF));
  }
  chunks.push(Buffer.from(`--${boundary}--${CRLF}`, 'latin1'));
  return {
    sender: '',
    recipients: [to],
    content: Buffer.concat(chunks),
    meta: { dsn: req.kind, original_queue_id: entry.id, body: global8 ? '8BITMIME' : '7BIT', smtputf8: global },
  };
}
