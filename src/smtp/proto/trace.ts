/*
 * Header lines we write into accepted messages: the Received: trace line (RFC 5321 §4.4), Date: in RFC 5322
 * form, and the "with" protocol keyword (RFC 3848, RFC 6531). Pure: every input (time, ids, names) is given.
 * Client-chosen text (the HELO name) is reduced to safe characters so it cannot break the header's syntax.
 */

export interface TraceInfo {
  helo: string | null;
  /** client IP address, no brackets */
  clientAddress: string;
  hostname: string;
  /** "with" keyword, see withProtocol */
  protocol: string;
  id: string;
  /** named only when the message has exactly one recipient (privacy, as Postfix does) */
  recipient: string | null;
  date: Date;
}

export function withProtocol(p: { esmtp: boolean; tls: boolean; auth: boolean; utf8: boolean; lmtp?: boolean }): string {
  if (!p.esmtp) return 'SMTP';
  const base = p.lmtp ? (p.utf8 ? 'UTF8LMTP' : 'LMTP') : p.utf8 ? 'UTF8SMTP' : 'ESMTP';
  return `${base}${p.tls ? 'S' : ''}${p.auth ? 'A' : ''}`;
}

export function addressLiteral(ip: string): string {
  return ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
}

function safeHelo(helo: string | null): string {
  if (!helo) return 'unknown';
  return helo.replace(/[^A-Za-z0-9.\-_:[\]]/g, '_').slice(0, 255);
}

export function receivedHeader(t: TraceInfo): string {
  const from = `Received: from ${safeHelo(t.helo)} (${addressLiteral(t.clientAddress)})`;
  const by = `\tby ${t.hostname} (Cartero) with ${t.protocol} id ${t.id}`;
  const date = rfc5322Date(t.date);
  const tail = t.recipient !== null ? [by, `\tfor <${t.recipient}>; ${date}`] : [`${by};`, `\t${date}`];
  return [from, ...tail].join('\r\n') + '\r\n';
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC, e.g. "Tue, 05 Mar 2024 09:04:05 +0000". */
export function rfc5322Date(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
  );
}
