/*
 * The stored form of a structure: compact JSON, read back with a full shape check, because what comes
 * out of the database is input like any other (an old format, a truncated row, a bug). Anything that is
 * not exactly a structure is a MimeError; nesting in stored JSON is bounded like parsing is.
 */
import { MAX_DEPTH } from './parse.js';
import { type Address, type Disposition, type Envelope, type MessageStructure, MimeError, type MimePart, type Param } from './types.js';

/** Null members of objects are left out (read back as null): structures are mostly nulls. */
export function serializeStructure(s: MessageStructure): string {
  return JSON.stringify(s, function (this: unknown, _key: string, value: unknown) {
    return value === null && !Array.isArray(this) ? undefined : value;
  });
}

type Obj = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new MimeError(`stored structure: ${path} ${what}`);
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'is not a string');
  return v;
}

function nstr(v: unknown, path: string): string | null {
  return v === null || v === undefined ? null : str(v, path);
}

function int(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(path, 'is not a non-negative integer');
  return v;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, 'is not an array');
  return v;
}

function params(v: unknown, path: string): Param[] {
  return array(v, path).map((p, i) => {
    const a = array(p, `${path}[${i}]`);
    if (a.length !== 2) fail(`${path}[${i}]`, 'is not a pair');
    return [str(a[0], `${path}[${i}][0]`), str(a[1], `${path}[${i}][1]`)];
  });
}

function addresses(v: unknown, path: string): Address[] | null {
  if (v === null || v === undefined) return null;
  return array(v, path).map((a, i) => {
    const t = array(a, `${path}[${i}]`);
    if (t.length !== 4) fail(`${path}[${i}]`, 'is not an address');
    const field = (x: unknown) => (x === null ? null : str(x, `${path}[${i}]`));
    return [field(t[0]), field(t[1]), field(t[2]), field(t[3])];
  });
}

function envelope(v: unknown, path: string): Envelope {
  if (!isObj(v)) fail(path, 'is not an object');
  return {
    date: nstr(v.date, `${path}.date`),
    subject: nstr(v.subject, `${path}.subject`),
    from: addresses(v.from, `${path}.from`),
    sender: addresses(v.sender, `${path}.sender`),
    replyTo: addresses(v.replyTo, `${path}.replyTo`),
    to: addresses(v.to, `${path}.to`),
    cc: addresses(v.cc, `${path}.cc`),
    bcc: addresses(v.bcc, `${path}.bcc`),
    inReplyTo: nstr(v.inReplyTo, `${path}.inReplyTo`),
    messageId: nstr(v.messageId, `${path}.messageId`),
  };
}

function disposition(v: unknown, path: string): Disposition | null {
  if (v === null || v === undefined) return null;
  if (!isObj(v)) fail(path, 'is not an object');
  return { type: str(v.type, `${path}.type`), params: params(v.params, `${path}.params`) };
}

function part(v: unknown, path: string, depth: number): MimePart {
  if (depth > 2 * MAX_DEPTH + 2) fail(path, 'is nested too deeply');
  if (!isObj(v)) fail(path, 'is not an object');
  const p: MimePart = {
    headerStart: int(v.headerStart, `${path}.headerStart`),
    bodyStart: int(v.bodyStart, `${path}.bodyStart`),
    end: int(v.end, `${path}.end`),
    type: str(v.type, `${path}.type`),
    subtype: str(v.subtype, `${path}.subtype`),
    params: params(v.params, `${path}.params`),
    id: nstr(v.id, `${path}.id`),
    description: nstr(v.description, `${path}.description`),
    encoding: nstr(v.encoding, `${path}.encoding`),
    md5: nstr(v.md5, `${path}.md5`),
    disposition: disposition(v.disposition, `${path}.disposition`),
    language: v.language === null || v.language === undefined ? null : array(v.language, `${path}.language`).map((l, i) => str(l, `${path}.language[${i}]`)),
    location: nstr(v.location, `${path}.location`),
    lines: int(v.lines, `${path}.lines`),
  };
  if (p.headerStart > p.bodyStart || p.bodyStart > p.end) fail(path, 'has offsets out of order');
  if (v.parts !== undefined) {
    const children = array(v.parts, `${path}.parts`);
    if (children.length === 0) fail(`${path}.parts`, 'is empty');
    p.parts = children.map((c, i) => part(c, `${path}.parts[${i}]`, depth + 1));
  }
  if (v.message !== undefined) {
    if (!isObj(v.message)) fail(`${path}.message`, 'is not an object');
    p.message = { envelope: envelope(v.message.envelope, `${path}.message.envelope`), root: part(v.message.root, `${path}.message.root`, depth + 1) };
  }
  return p;
}

export function deserializeStructure(json: string): MessageStructure {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new MimeError(`stored structure is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isObj(v)) fail('root', 'is not an object');
  if (v.version !== 1) fail('version', `is ${JSON.stringify(v.version) ?? 'missing'}, expected 1`);
  return { version: 1, envelope: envelope(v.envelope, 'envelope'), root: part(v.root, 'root', 0) };
}
