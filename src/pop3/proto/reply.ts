/*
 * POP3 response formatting: "+OK"/"-ERR" status lines with RFC 2449 / RFC 3206 response codes, and
 * small multi-line responses (CAPA, LIST, UIDL) with dot-stuffing. Pure. Text from anywhere (store
 * errors, client names) never puts a CR, LF or other control byte on the wire: they become "?".
 * Message bodies are not formatted here but streamed by dot-stuff.ts.
 */

/** RFC 2449 §8 and RFC 3206 response codes that we send. */
export type RespCode = 'AUTH' | 'SYS/TEMP' | 'SYS/PERM' | 'IN-USE' | 'LOGIN-DELAY';

const UNSAFE = /[\x00-\x1f\x7f]/g;

function clean(text: string): string {
  return text.replace(UNSAFE, '?');
}

export function ok(text = ''): string {
  return text === '' ? '+OK\r\n' : `+OK ${clean(text)}\r\n`;
}

export function err(text: string, code?: RespCode): string {
  return `-ERR ${code ? `[${code}] ` : ''}${clean(text)}\r\n`;
}

/** The SASL continuation: "+ " with a base64 challenge (empty for PLAIN, RFC 5034 §4). */
export function continuation(challenge = ''): string {
  return `+ ${challenge}\r\n`;
}

/** "+OK first" followed by `lines` (dot-stuffed) and the terminating ".". */
export function multiline(first: string, lines: readonly string[]): string {
  let out = ok(first);
  for (const line of lines) {
    const safe = clean(line);
    out += safe.startsWith('.') ? `.${safe}\r\n` : `${safe}\r\n`;
  }
  return `${out}.\r\n`;
}
