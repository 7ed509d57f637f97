/*
 * Modified UTF-7 (RFC 3501 §5.1.3), the mailbox-name encoding of clients that have not enabled
 * UTF8=ACCEPT. Names are stored as UTF-8; this converts at the protocol edge. Decoding rejects what the
 * RFC forbids (unterminated or non-canonical shifts, encoded printable ASCII) so one name has one spelling.
 */
import { ImapParseError } from './tokens.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

export function encodeMutf7(name: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const bytes = Buffer.alloc(pending.length * 2);
    pending.forEach((u, i) => bytes.writeUInt16BE(u, i * 2));
    out += '&' + bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0x20 && code <= 0x7e) {
      flush();
      out += code === 0x26 ? '&-' : name[i];
    } else {
      pending.push(code);
    }
  }
  flush();
  return out;
}

export function decodeMutf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) throw new ImapParseError('Mailbox name is not modified UTF-7');
    if (ch !== '&') {
      out += ch;
      i++;
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end === -1) throw new ImapParseError('Unterminated modified UTF-7 shift');
    const b64 = text.slice(i + 1, end);
    i = end + 1;
    if (b64 === '') {
      out += '&';
      continue;
    }
    if (![...b64].every((c) => B64.includes(c))) throw new ImapParseError('Invalid modified UTF-7');
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0) throw new ImapParseError('Invalid modified UTF-7');
    let chunk = '';
    for (let j = 0; j < bytes.length; j += 2) chunk += String.fromCharCode(bytes.readUInt16BE(j));
    if ([...chunk].some((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) <= 0x7e)) throw new ImapParseError('Non-canonical modified UTF-7');
    if (encodeMutf7(chunk) !== `&${b64}-`) throw new ImapParseError('Non-canonical modified UTF-7');
    out += chunk;
  }
  return out;
}
