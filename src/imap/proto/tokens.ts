/*
 * Tokeniser for one framed IMAP command (see reader.ts): tag, command name and a token tree of atoms,
 * strings (quoted or literal) and parenthesised lists. Fetch attributes such as
 * BODY[1.2.HEADER.FIELDS (A B)]<0.100> are one atom: text inside brackets is kept verbatim, so the
 * fetch parser sees the section whole. Pure; malformed input gives an ImapParseError naming what is wrong.
 */
import type { CommandParts } from './reader.js';

export type Token =
  | { t: 'atom'; v: string }
  | { t: 'string'; v: Buffer; literal: boolean; binary: boolean }
  | { t: 'list'; v: Token[] };

export interface ParsedCommand {
  tag: string;
  /** upper-cased; "UID FETCH" etc. for UID commands */
  name: string;
  args: Token[];
}

export class ImapParseError extends Error {
  override readonly name = 'ImapParseError';
  constructor(
    message: string,
    /** the tag when it could be read, so the answer can be tagged */
    readonly tag: string | null = null,
    /** the response code to put in the BAD/NO, if any (e.g. "TOOBIG", "BADCHARSET") */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const MAX_DEPTH = 32;

/** TAG chars: ASTRING-CHAR except "+" (RFC 9051 formal syntax). */
export function isValidTag(tag: string): boolean {
  return /^[\x21-\x7e]+$/.test(tag) && !/[(){%*"\\+]/.test(tag);
}

class Cursor {
  private part = 0;
  private pos = 0;
  constructor(private readonly parts: CommandParts) {}

  get text(): string {
    return this.parts.texts[this.part]!;
  }
  peek(): string | undefined {
    return this.text[this.pos];
  }
  atEnd(): boolean {
    return this.pos >= this.text.length && this.part >= this.parts.texts.length - 1;
  }
  /** at the end of the current text fragment, with a literal following */
  atLiteral(): boolean {
    return this.pos >= this.text.length && this.part < this.parts.texts.length - 1;
  }
  advance(n = 1): void {
    this.pos += n;
  }
  rest(): string {
    return this.text.slice(this.pos);
  }
  takeLiteral(): Buffer {
    const lit = this.parts.literals[this.part];
    if (!lit) throw new ImapParseError('Missing literal data');
    this.part++;
    this.pos = 0;
    return lit;
  }
}

export function tokenize(parts: CommandParts): ParsedCommand {
  const c = new Cursor(parts);
  const first = c.text;
  const sp = first.indexOf(' ');
  const tag = sp === -1 ? first : first.slice(0, sp);
  if (tag === '' || !isValidTag(tag)) throw new ImapParseError('Invalid tag');
  if (sp === -1) throw new ImapParseError('Missing command', tag);
  c.advance(sp + 1);
  let name = readBareAtom(c, tag).toUpperCase();
  if (name === '') throw new ImapParseError('Missing command', tag);
  if (name === 'UID') {
    if (c.peek() !== ' ') throw new ImapParseError('Missing UID command', tag);
    c.advance();
    name = `UID ${readBareAtom(c, tag).toUpperCase()}`;
  }
  try {
    const args = readSequence(c, 0, false);
    return { tag, name, args };
  } catch (err) {
    if (err instanceof ImapParseError) throw new ImapParseError(err.message, tag, err.code);
    throw err;
  }
}

function readBareAtom(c: Cursor, tag: string): string {
  const m = /^[A-Za-z0-9.\-]*/.exec(c.rest())![0];
  c.advance(m.length);
  const next = c.peek();
  if (next !== undefined && next !== ' ') throw new ImapParseError('Invalid command name', tag);
  return m;
}

/** Reads space-separated tokens until the end (top level) or a closing parenthesis (in a list). */
function readSequence(c: Cursor, depth: number, inList: boolean): Token[] {
  const out: Token[] = [];
  for (;;) {
    if (inList && c.peek() === ')') {
      c.advance();
      return out;
    }
    if (c.atEnd()) {
      if (inList) throw new ImapParseError('Unbalanced parentheses');
      return out;
    }
    if (out.length > 0 || !inList) {
      // tokens are separated by exactly one space; the command name was followed by one already
      if (out.length > 0) {
        if (c.peek() !== ' ') throw new ImapParseError('Expected a space between arguments');
        c.advance();
      } else if (!inList) {
        if (c.peek() !== ' ') throw new ImapParseError('Expected a space after the command');
        c.advance();
      }
    }
    out.push(readToken(c, depth));
  }
}

function readToken(c: Cursor, depth: number): Token {
  const ch = c.peek();
  if (ch === undefined) {
    if (c.atLiteral()) throw new ImapParseError('Unexpected literal');
    throw new ImapParseError('Missing argument');
  }
  if (ch === '(') {
    if (depth >= MAX_DEPTH) throw new ImapParseError('Lists nested too deeply');
    c.advance();
    return { t: 'list', v: readSequence(c, depth + 1, true) };
  }
  if (ch === '"') return readQuoted(c);
  if (ch === '{' || (ch === '~' && c.rest().startsWith('~{'))) return readLiteral(c);
  if (ch === ')') throw new ImapParseError('Unbalanced parentheses');
  if (ch === ' ') throw new ImapParseError('Unexpected space');
  return readAtom(c);
}

function readQuoted(c: Cursor): Token {
  const s = c.rest();
  let out = '';
  let i = 1;
  for (; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '"') {
      c.advance(i + 1);
      return { t: 'string', v: Buffer.from(out, 'utf8'), literal: false, binary: false };
    }
    if (ch === '\\') {
      const next = s[i + 1];
      if (next !== '"' && next !== '\\') throw new ImapParseError('Invalid escape in quoted string');
      out += next;
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n' || ch === '\0') throw new ImapParseError('Invalid character in quoted string');
    out += ch;
  }
  throw new ImapParseError('Unterminated quoted string');
}

function readLiteral(c: Cursor): Token {
  const m = /^(~?)\{(\d+)[+-]?\}$/.exec(c.rest());
  if (!m) throw new ImapParseError('Invalid literal');
  c.advance(c.rest().length);
  if (!c.atLiteral()) throw new ImapParseError('Missing literal data');
  const v = c.takeLiteral();
  if (v.length !== Number(m[2])) throw new ImapParseError('Literal size mismatch');
  const binary = m[1] === '~';
  if (!binary && v.includes(0)) throw new ImapParseError('NUL in literal (use literal8)');
  return { t: 'string', v, literal: true, binary };
}

/**
 * An atom, loosely: anything up to a space, parenthesis or quote, except that text inside [...] (fetch
 * sections, response codes) is taken whole, spaces and parentheses included.
 */
function readAtom(c: Cursor): Token {
  const s = c.rest();
  let i = 0;
  let bracket = 0;
  for (; i < s.length; i++) {
    const ch = s[i]!;
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) throw new ImapParseError('Control character in argument');
    if (bracket > 0) {
      if (ch === '[') bracket++;
      else if (ch === ']') bracket--;
      else if (ch === '"') throw new ImapParseError('Quoted string inside a section is not supported');
      continue;
    }
    if (ch === '[') {
      bracket++;
      continue;
    }
    if (ch === ' ' || ch === '(' || ch === ')' || ch === '"' || ch === '{') break;
  }
  if (bracket > 0) throw new ImapParseError('Unbalanced brackets');
  if (i === 0) throw new ImapParseError('Invalid argument');
  c.advance(i);
  const next = c.peek();
  if (next === '(' || next === '"' || next === '{') throw new ImapParseError('Expected a space between arguments');
  return { t: 'atom', v: s.slice(0, i) };
}

// ------------------------------------------------------------------ argument access for command parsers

/** Walks a command's arguments; every accessor throws ImapParseError with a useful text. */
export class Args {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly what = 'arguments',
  ) {}

  get remaining(): number {
    return this.tokens.length - this.i;
  }
  peek(): Token | undefined {
    return this.tokens[this.i];
  }
  next(expected: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw new ImapParseError(`Missing ${expected}`);
    return t;
  }
  end(): void {
    if (this.i < this.tokens.length) throw new ImapParseError(`Too many ${this.what}`);
  }
  atom(expected: string): string {
    const t = this.next(expected);
    if (t.t !== 'atom') throw new ImapParseError(`Expected ${expected}`);
    return t.v;
  }
  /** An atom matched case-insensitively against `word` if it is next; consumed only when it matches. */
  optionalWord(word: string): boolean {
    const t = this.peek();
    if (t && t.t === 'atom' && t.v.toUpperCase() === word) {
      this.i++;
      return true;
    }
    return false;
  }
  list(expected: string): Token[] {
    const t = this.next(expected);
    if (t.t !== 'list') throw new ImapParseError(`Expected a parenthesised ${expected}`);
    return t.v;
  }
  /** astring: atom or string, as text (UTF-8) */
  astring(expected: string): string {
    return astringOf(this.next(expected), expected);
  }
  /** astring as raw bytes (literals may carry anything) */
  astringBytes(expected: string): Buffer {
    const t = this.next(expected);
    if (t.t === 'string') return t.v;
    if (t.t === 'atom') return Buffer.from(t.v, 'utf8');
    throw new ImapParseError(`Expected ${expected}`);
  }
  number(expected: string, max = 0xffffffff): number {
    return numberOf(this.atom(expected), expected, max);
  }
}

export function astringOf(t: Token, expected: string): string {
  if (t.t === 'string') return t.v.toString('utf8');
  if (t.t === 'atom') {
    if (t.v.includes('[') && !/^[^\[]*\[[^\]]*\]$/.test(t.v)) throw new ImapParseError(`Invalid ${expected}`);
    return t.v;
  }
  throw new ImapParseError(`Expected ${expected}`);
}

export function numberOf(text: string, expected: string, max = 0xffffffff): number {
  if (!/^\d{1,20}$/.test(text)) throw new ImapParseError(`Expected a number for ${expected}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > max) throw new ImapParseError(`Number out of range for ${expected}`);
  return n;
}
