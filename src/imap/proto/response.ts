/*
 * Encoding of values in server responses: IMAP strings (quoted when safe, literal otherwise), nstrings,
 * flag lists. One place decides quoting so no response can be broken by a value with a quote, CR/LF or
 * 8-bit bytes. Pure.
 */

/** A string as quoted or literal. `utf8`: 8-bit text may be quoted (UTF8=ACCEPT enabled). */
export function imapString(value: string, utf8 = false): string {
  if (value.length < 1024 && !/[\r\n\0]/.test(value) && (utf8 || /^[\x01-\x7f]*$/.test(value))) {
    return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  return `{${Buffer.byteLength(value, 'utf8')}}\r\n${value}`;
}

export function nstring(value: string | null, utf8 = false): string {
  return value === null ? 'NIL' : imapString(value, utf8);
}

/** astring for names that are usually atoms (mailbox names): bare atom when possible. */
export function astring(value: string, utf8 = false): string {
  if (/^[\x21-\x7e]+$/.test(value) && !/[(){%*"\\\]]/.test(value) && value.toUpperCase() !== 'NIL') return value;
  return imapString(value, utf8);
}

export function flagList(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}
