/*
 * xtext (RFC 3461 §4): the encoding of ENVID, ORCPT and AUTH= parameter values. Pure functions.
 * Decoding returns null for anything malformed (bad "+XX", bytes outside 33..126, "=") rather than
 * guessing; lowercase hex is tolerated on input, encoding always writes uppercase.
 */

const HEX = /^[0-9A-Fa-f]{2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes xtext to a (UTF-8) string, or null when the value is not valid xtext. */
export function decodeXtext(value: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.codePointAt(i) ?? 0;
    if (c === 0x2b) {
      const hex = value.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) {
      bytes.push(c);
    } else if (c > 127) {
      // RFC 6533 utf-8-addr-xtext lets UTF-8 through unencoded (SMTPUTF8 sessions)
      for (const b of Buffer.from(String.fromCodePoint(c), 'utf8')) bytes.push(b);
      if (c > 0xffff) i++;
    } else {
      return null;
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

export function encodeXtext(value: string): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out += b >= 33 && b <= 126 && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
