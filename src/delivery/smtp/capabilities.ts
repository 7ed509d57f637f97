/*
 * What the peer's EHLO reply offers (RFC 5321 §4.1.1.1 and the extension RFCs), parsed once into flags
 * the client decides on. Pure; unknown keywords are ignored, a malformed SIZE counts as "no limit
 * announced" (RFC 1870 allows SIZE without a number).
 */

export interface Capabilities {
  esmtp: boolean;
  pipelining: boolean;
  /** announced SIZE limit in octets; 0 = SIZE offered without a limit; null = SIZE not offered */
  size: number | null;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  starttls: boolean;
  chunking: boolean;
  /** SASL mechanisms offered, upper case */
  auth: string[];
  /** a Cartero SMTP or LMTP server: MAIL FROM takes XQUEUEID=<our queue id> (docs/xqueueid.md) */
  xqueueid: boolean;
}

export const HELO_CAPABILITIES: Capabilities = {
  esmtp: false, pipelining: false, size: null, eightBitMime: false, smtpUtf8: false, dsn: false, starttls: false, chunking: false, auth: [], xqueueid: false,
};

/** `lines` are the EHLO reply lines after the code (the first is the greeting text). */
export function parseEhlo(lines: readonly string[]): Capabilities {
  const caps: Capabilities = { ...HELO_CAPABILITIES, esmtp: true, auth: [] };
  for (const line of lines.slice(1)) {
    const [keyword = '', ...args] = line.trim().split(/\s+/);
    switch (keyword.toUpperCase()) {
      case 'PIPELINING': caps.pipelining = true; break;
      case '8BITMIME': caps.eightBitMime = true; break;
      case 'SMTPUTF8': caps.smtpUtf8 = true; break;
      case 'DSN': caps.dsn = true; break;
      case 'STARTTLS': caps.starttls = true; break;
      case 'CHUNKING': caps.chunking = true; break;
      case 'XQUEUEID': caps.xqueueid = true; break;
      case 'SIZE': {
        const n = args[0] !== undefined && /^\d{1,15}$/.test(args[0]) ? Number(args[0]) : 0;
        caps.size = n;
        break;
      }
      case 'AUTH':
        for (const m of args) if (/^[A-Z0-9_-]{1,20}$/i.test(m) && !caps.auth.includes(m.toUpperCase())) caps.auth.push(m.toUpperCase());
        break;
      default:
        // "AUTH=LOGIN PLAIN" (old Outlook form)
        if (/^AUTH=/i.test(keyword)) {
          for (const m of [keyword.slice(5), ...args]) if (/^[A-Z0-9_-]{1,20}$/i.test(m) && !caps.auth.includes(m.toUpperCase())) caps.auth.push(m.toUpperCase());
        }
    }
  }
  return caps;
}
