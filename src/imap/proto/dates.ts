/*
 * IMAP dates: "date" (1-Feb-1994, search keys) and "date-time" ("17-Jul-1996 02:44:25 -0700", APPEND
 * and INTERNALDATE). Search dates compare by calendar day in UTC, date-times carry their zone. Pure.
 */
import { ImapParseError } from './tokens.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function month(name: string): number {
  const i = MONTHS.findIndex((m) => m.toLowerCase() === name.toLowerCase());
  if (i < 0) throw new ImapParseError(`Invalid month "${name.slice(0, 10)}"`);
  return i;
}

function checkDay(y: number, m: number, d: number): void {
  const days = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  if (d < 1 || d > days) throw new ImapParseError('Invalid day of month');
}

/** "1-Feb-1994" → start of that day, UTC, in ms. */
export function parseDate(text: string): number {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  if (!m) throw new ImapParseError(`Invalid date "${text.slice(0, 30)}"`);
  const y = Number(m[3]);
  const mo = month(m[2]!);
  const d = Number(m[1]);
  checkDay(y, mo, d);
  return Date.UTC(y, mo, d);
}

/** " 7-Jul-1996 02:44:25 -0700" or "17-Jul-1996 02:44:25 -0700" → ms since the epoch. */
export function parseDateTime(text: string): number {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) throw new ImapParseError(`Invalid date-time "${text.slice(0, 40)}"`);
  const y = Number(m[3]);
  const mo = month(m[2]!);
  const d = Number(m[1]);
  checkDay(y, mo, d);
  const [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (h > 23 || mi > 59 || s > 60) throw new ImapParseError('Invalid time of day');
  const zone = (Number(m[8]) * 60 + Number(m[9])) * (m[7] === '-' ? -1 : 1);
  return Date.UTC(y, mo, d, h, mi, Math.min(s, 59)) - zone * 60_000;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** ms → "05-Mar-2024 09:04:05 +0000" (we store UTC and say so). */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** Start of the UTC day containing `ms` (for BEFORE/ON/SINCE, which ignore time and zone). */
export function dayOf(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}
