/*
 * Mailbox names at the protocol edge: decoding (modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT),
 * INBOX's case-insensitivity, and validation — hierarchy separator "/", no empty, "." or ".." levels, no
 * leading or trailing separator, no control characters, bounded length — so nothing odd reaches the store.
 */
import { decodeMutf7, encodeMutf7 } from './mutf7.js';
import { ImapParseError } from './tokens.js';

export const SEPARATOR = '/';
export const MAX_NAME_LENGTH = 512;
const MAX_LEVELS = 32;

/** Wire form → stored form (INBOX canonicalised). Throws ImapParseError for a name we never store. */
export function decodeMailboxName(wire: string, utf8: boolean): string {
  const name = utf8 ? wire : decodeMutf7(wire);
  return canonical(name);
}

/** INBOX is case-insensitive, also as the first level of a hierarchy ("inbox/x" → "INBOX/x"). */
export function canonical(name: string): string {
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  if (name.slice(0, 6).toUpperCase() === 'INBOX/') return 'INBOX' + name.slice(5);
  return name;
}

export function validateMailboxName(name: string): void {
  if (name === '') throw new ImapParseError('Empty mailbox name');
  if (name.length > MAX_NAME_LENGTH) throw new ImapParseError('Mailbox name too long');
  if (/[\x00-\x1f\x7f\u0080-\u009f\ufffd]/.test(name)) throw new ImapParseError('Control character in mailbox name');
  if (/[*%]/.test(name)) throw new ImapParseError('Wildcard in mailbox name');
  if (name.startsWith(SEPARATOR) || name.endsWith(SEPARATOR)) throw new ImapParseError('Mailbox name starts or ends with the separator');
  const levels = name.split(SEPARATOR);
  if (levels.length > MAX_LEVELS) throw new ImapParseError('Mailbox name too deep');
  for (const level of levels) {
    if (level === '') throw new ImapParseError('Empty hierarchy level in mailbox name');
    if (level === '.' || level === '..') throw new ImapParseError('Invalid hierarchy level in mailbox name');
  }
}

/** Stored form → wire form. */
export function encodeMailboxName(name: string, utf8: boolean): string {
  return utf8 ? name : encodeMutf7(name);
}
