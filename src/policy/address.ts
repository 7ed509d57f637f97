/*
 * Address handling shared by policy, commit-time expansion and local delivery: splitting at the last
 * "@", the plain-local-part test that keeps routing syntax (percent hack, bang path, quoted or nested
 * "@") from ever reaching a directory lookup, and subaddress stripping. Pure functions, no I/O, never
 * throw: an address that cannot be split comes back as null.
 */

export interface SplitAddress {
  /** the local part exactly as given (case kept: only local domains fold it) */
  local: string;
  /** the domain lowercased and otherwise exactly as given: no trailing-dot folding, literals kept */
  domain: string;
}

/** Splits at the last "@" (a quoted or source-routed local part keeps its own "@"s on the left). */
export function splitAddress(address: string): SplitAddress | null {
  const at = address.lastIndexOf('@');
  if (at < 0 || at === address.length - 1) return null;
  return { local: address.slice(0, at), domain: address.slice(at + 1).toLowerCase() };
}

/**
 * RFC 5322 atext and dots, plus UTF-8 (RFC 6531), minus "%" and "!": a local part of one of our domains
 * that needs quoting or carries routing syntax is never looked up, so it can never be rerouted.
 */
const PLAIN_LOCAL = /^[A-Za-z0-9#$&'*+/=?^_`{|}~\-.\u00A0-\u{10FFFF}]{1,64}$/u;

export function isPlainLocalPart(local: string): boolean {
  return PLAIN_LOCAL.test(local) && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}

/** A host name as the directory stores it: no trailing dot, no address literal, no empty label. */
export function isPlainDomain(domain: string): boolean {
  return domain.length <= 253 && /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i.test(domain);
}

/**
 * `user+tag` → `user` for any delimiter character in `delimiters` (Postfix's recipient_delimiter with
 * several characters). Null when there is no delimiter, or nothing before it.
 */
export function stripSubaddress(local: string, delimiters: string): string | null {
  if (delimiters === '') return null;
  for (let i = 1; i < local.length; i++) {
    if (delimiters.includes(local.charAt(i))) return local.slice(0, i);
  }
  return null;
}

/** The form the directory stores for an address of a local domain. */
export function localKey(local: string, domain: string): string {
  return `${local.toLowerCase()}@${domain}`;
}

/** A key for deduplicating recipients: the domain is case-insensitive, a remote local part is not. */
export function recipientKey(address: string): string {
  const split = splitAddress(address);
  return split ? `${split.local}@${split.domain}` : address;
}

/** Removes what could end a header line early (defence in depth: the SMTP parser refuses CR and LF). */
export function headerSafe(text: string): string {
  return text.replace(/[\r\n\0]/g, '');
}
