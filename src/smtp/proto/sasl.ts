/*
 * SASL wire helpers for AUTH (RFC 4954) and the PLAIN (RFC 4616) and LOGIN mechanisms. Pure: strict
 * base64 decoding (anything malformed is null, never a guess) and PLAIN message splitting. The verb
 * handler owns the exchange and the credential check.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a client response; "=" is the empty initial response (RFC 4954 §4). Null when malformed. */
export function decodeSaslResponse(text: string): string | null {
  if (text === '=') return '';
  if (!BASE64.test(text)) return null;
  try {
    return utf8.decode(Buffer.from(text, 'base64'));
  } catch {
    return null;
  }
}

export function encodeChallenge(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export interface PlainCredentials {
  authzid: string;
  authcid: string;
  password: string;
}

/** authzid NUL authcid NUL passwd; null when the shape is wrong or a part is missing. */
export function parsePlain(message: string): PlainCredentials | null {
  const parts = message.split('\0');
  if (parts.length !== 3) return null;
  const [authzid = '', authcid = '', password = ''] = parts;
  if (authcid === '' || password === '') return null;
  return { authzid, authcid, password };
}
