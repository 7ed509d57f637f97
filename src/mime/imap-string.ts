/*
 * IMAP string rendering for FETCH data built from stored structures: NIL, a quoted string when the
 * value is short printable ASCII, otherwise a synchronising literal (8-bit text, CR, LF, control
 * characters, long values). NUL cannot appear in an IMAP literal, so it is dropped.
 */

/** Longer values go out as literals (keeps lines short and quoting simple). */
export const MAX_QUOTED = 1024;

export function imapString(value: string | null): string {
  if (value === null) return 'NIL';
  if (value.length <= MAX_QUOTED && /^[\x20-\x7e]*$/.test(value)) return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const text = value.replace(/\0/g, '');
  return `{${Buffer.byteLength(text, 'utf8')}}\r\n${text}`;
}

/** A parenthesised list of strings, or NIL when empty. */
export function imapStringList(values: readonly string[] | null): string {
  return values && values.length > 0 ? `(${values.map(imapString).join(' ')})` : 'NIL';
}
