/*
 * Undoing Content-Transfer-Encoding (RFC 2045 §6) and converting a declared charset to UTF-8, for
 * BINARY fetches and text search. Decoders are lenient the way readers must be (stray characters in
 * base64, bad escapes in quoted-printable stay literal); an encoding we do not know is reported as
 * null, never guessed. Linear in the input.
 */
import iconv from 'iconv-lite';
import { bytesText } from './header.js';
import { isIdentityEncoding } from './parse.js';

const hex = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

export function decodeQuotedPrintable(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let o = 0;
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === 0x20 || c === 0x09) {
      // white space at the end of a line was added in transport (RFC 2045 §6.7 rule 3)
      let j = i;
      while (j < n && (src[j] === 0x20 || src[j] === 0x09)) j++;
      if (j === n || src[j] === 0x0a || (src[j] === 0x0d && src[j + 1] === 0x0a)) {
        i = j;
        continue;
      }
      while (i < j) out[o++] = src[i++]!;
      continue;
    }
    if (c !== 0x3d) {
      out[o++] = c;
      i++;
      continue;
    }
    const h = hex(src[i + 1] ?? -1);
    const l = hex(src[i + 2] ?? -1);
    if (h >= 0 && l >= 0) {
      out[o++] = h * 16 + l;
      i += 3;
      continue;
    }
    // soft line break: '=' then optional white space then the line end
    let j = i + 1;
    while (j < n && (src[j] === 0x20 || src[j] === 0x09)) j++;
    if (j === n) {
      i = n;
    } else if (src[j] === 0x0a) {
      i = j + 1;
    } else if (src[j] === 0x0d && src[j + 1] === 0x0a) {
      i = j + 2;
    } else {
      out[o++] = c;
      i++;
    }
  }
  return out.subarray(0, o);
}

export function decodeBase64(src: Buffer): Buffer {
  return Buffer.from(src.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
}

/** The decoded body, or null for an encoding we cannot undo. */
export function decodeTransfer(body: Buffer, encoding: string | null): Buffer | null {
  if (isIdentityEncoding(encoding)) return body;
  switch (encoding!.toLowerCase()) {
    case 'base64':
      return decodeBase64(body);
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return null;
  }
}

/** Text in the declared charset as a string; unknown or absent charsets read as UTF-8 (else Latin-1). */
export function charsetText(bytes: Buffer, charset: string | null): string {
  const cs = charset?.trim().toLowerCase() ?? '';
  if (cs === '' || cs === 'us-ascii' || cs === 'ascii' || cs === 'utf-8' || cs === 'utf8' || !iconv.encodingExists(cs)) {
    return bytesText(bytes, 0, bytes.length);
  }
  try {
    return iconv.decode(bytes, cs);
  } catch {
    return bytesText(bytes, 0, bytes.length);
  }
}
