/*
 * The Date: header as a point in time (RFC 5322 §3.3 with the obsolete forms: two-digit years, named
 * zones, comments, missing seconds), for SEARCH SENTBEFORE/SENTON/SENTSINCE. Unparseable is null.
 */
import type { MessageStructure } from './types.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const ZONES: Record<string, number> = { ut: 0, utc: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };

export interface ParsedDate {
  /** ms since the epoch */
  time: number;
  /** the calendar day as written in the header (its own zone): what SENTON compares */
  day: { year: number; month: number; day: number };
}

export function parseDate(value: string): ParsedDate | null {
  const s = value.replace(/\([^()]*\)/g, ' ').trim().slice(0, 1000).toLowerCase();
  const m = /^(?:[a-z]+\s*,?\s*)?(\d{1,2})\s*[- ]\s*([a-z]{3})[a-z]*\s*[- ]\s*(\d{2,4})\s+(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?(?:\s*([+-]\d{4}|[a-z]+))?/.exec(s);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return null;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const day = Number(m[1]);
  const [hh, mm, ss] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return null;
  const zone = m[7] ?? '';
  let offset = 0;
  if (/^[+-]\d{4}$/.test(zone)) {
    const v = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3));
    offset = zone.startsWith('-') ? -v : v;
  } else {
    // military and unknown zones mean "no information": treat as +0000 (RFC 5322 §4.3)
    offset = ZONES[zone] ?? 0;
  }
  const local = Date.UTC(year, month, day, hh, mm, ss);
  if (!Number.isFinite(local)) return null;
  return { time: local - offset * 60_000, day: { year, month: month + 1, day } };
}

export function sentDate(s: MessageStructure): number | null {
  return s.envelope.date === null ? null : (parseDate(s.envelope.date)?.time ?? null);
}

/** The calendar day of the Date: header in its own zone (IMAP SENTON ignores time and zone), or null. */
export function sentDay(s: MessageStructure): { year: number; month: number; day: number } | null {
  return s.envelope.date === null ? null : (parseDate(s.envelope.date)?.day ?? null);
}
