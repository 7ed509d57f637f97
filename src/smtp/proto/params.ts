/*
 * MAIL and RCPT parameters (RFC 5321 esmtp-param; SIZE RFC 1870, BODY RFC 6152/3030, SMTPUTF8 RFC 6531,
 * RET/ENVID/NOTIFY/ORCPT RFC 3461, AUTH= RFC 4954). Pure. Unknown keywords are 555, malformed values 501,
 * duplicates 501. Decoded xtext values holding control characters are refused: they end up in DSN headers.
 * XQUEUEID=<id> (Cartero's extension on SMTP and LMTP, docs/xqueueid.md): the sending queue's id, the
 * key that makes a resend after a lost reply find the first copy.
 */
import { err, ok, type Result } from './errors.js';
import { decodeXtext } from './xtext.js';

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';
export type NotifyKeyword = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface MailParams {
  /** declared message size, Infinity when absurdly large; null when not given */
  size: number | null;
  body: BodyType | null;
  smtputf8: boolean;
  ret: 'FULL' | 'HDRS' | null;
  envid: string | null;
  /** AUTH= value decoded ("<>" when the submitter is unknown) */
  auth: string | null;
  /** XQUEUEID= decoded, the client's queue id (absent when not given) */
  xqueueid?: string;
}

/** What an XQUEUEID value may hold once decoded: a queue id as Cartero and Postfix make them. */
export const XQUEUEID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface RcptParams {
  notify: NotifyKeyword[] | null;
  /** "addr-type;address" with the address decoded from xtext */
  orcpt: string | null;
}

interface Param {
  keyword: string;
  value: string | null;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const VALUE = /^[\x21-\x3c\x3e-\x7e\u0080-\u{10ffff}]+$/u;
const CONTROL = /[\x00-\x1f\x7f]/;
/** RFC 3461 §4.4 */
const ENVID_MAX = 100;

export function splitParams(text: string): Result<Param[]> {
  const out: Param[] = [];
  const seen = new Set<string>();
  for (const word of text.split(' ').filter((w) => w !== '')) {
    const eq = word.indexOf('=');
    const keyword = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? null : word.slice(eq + 1);
    if (!KEYWORD.test(keyword) || (value !== null && !VALUE.test(value))) return err('syntax', `Bad parameter syntax: ${word.slice(0, 40)}`);
    if (seen.has(keyword)) return err('param_duplicate', `Duplicate parameter: ${keyword}`);
    seen.add(keyword);
    out.push({ keyword, value });
  }
  return ok(out);
}

function decodedText(value: string | null, max: number): string | null {
  if (value === null) return null;
  const decoded = decodeXtext(value);
  if (decoded === null || decoded.length === 0 || decoded.length > max || CONTROL.test(decoded)) return null;
  return decoded;
}

export function parseMailParams(text: string): Result<MailParams> {
  const split = splitParams(text);
  if (!split.ok) return split;
  const out: MailParams = { size: null, body: null, smtputf8: false, ret: null, envid: null, auth: null };
  for (const { keyword, value } of split.value) {
    const bad = err<MailParams>('param_value', `Bad ${keyword} parameter`);
    switch (keyword) {
      case 'SIZE':
        if (value === null || !/^\d{1,20}$/.test(value)) return bad;
        out.size = Number.isSafeInteger(Number(value)) ? Number(value) : Infinity;
        break;
      case 'BODY': {
        const body = value?.toUpperCase();
        if (body !== '7BIT' && body !== '8BITMIME' && body !== 'BINARYMIME') return bad;
        out.body = body;
        break;
      }
      case 'SMTPUTF8':
        if (value !== null) return bad;
        out.smtputf8 = true;
        break;
      case 'RET': {
        const ret = value?.toUpperCase();
        if (ret !== 'FULL' && ret !== 'HDRS') return bad;
        out.ret = ret;
        break;
      }
      case 'ENVID':
        out.envid = decodedText(value, ENVID_MAX);
        if (out.envid === null) return bad;
        break;
      case 'AUTH':
        out.auth = decodedText(value, 1000);
        if (out.auth === null) return bad;
        break;
      case 'XQUEUEID': {
        const id = decodedText(value, 64);
        if (id === null || !XQUEUEID_PATTERN.test(id)) return bad;
        out.xqueueid = id;
        break;
      }
      default:
        return err('param_unknown', `Unsupported option: ${keyword.slice(0, 40)}`);
    }
  }
  return ok(out);
}

export function parseRcptParams(text: string): Result<RcptParams> {
  const split = splitParams(text);
  if (!split.ok) return split;
  const out: RcptParams = { notify: null, orcpt: null };
  for (const { keyword, value } of split.value) {
    const bad = err<RcptParams>('param_value', `Bad ${keyword} parameter`);
    if (keyword === 'NOTIFY') {
      out.notify = parseNotify(value);
      if (out.notify === null) return bad;
    } else if (keyword === 'ORCPT') {
      out.orcpt = parseOrcpt(value);
      if (out.orcpt === null) return bad;
    } else {
      return err('param_unknown', `Unsupported option: ${keyword.slice(0, 40)}`);
    }
  }
  return ok(out);
}

function parseNotify(value: string | null): NotifyKeyword[] | null {
  if (value === null) return null;
  const words = value.toUpperCase().split(',');
  if (words.length === 1 && words[0] === 'NEVER') return ['NEVER'];
  const out: NotifyKeyword[] = [];
  for (const w of words) {
    if ((w !== 'SUCCESS' && w !== 'FAILURE' && w !== 'DELAY') || out.includes(w)) return null;
    out.push(w);
  }
  return out;
}

function parseOrcpt(value: string | null): string | null {
  if (value === null) return null;
  const semi = value.indexOf(';');
  const type = value.slice(0, semi);
  if (semi <= 0 || !/^[A-Za-z0-9-]+$/.test(type)) return null;
  const address = decodedText(value.slice(semi + 1), 500);
  return address === null ? null : `${type.toLowerCase()};${address}`;
}
