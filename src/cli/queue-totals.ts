/*
 * `cartero queue totals`: Postfix's qshape for Cartero's queue — pending recipients counted by
 * destination domain in age buckets (minutes since arrival), then by the reason they wait. Pure: the
 * entries, the paused domains and the time go in, a value and its text come out. Counts recipients, not
 * messages, as qshape does: one message to 300 recipients at a dead site weighs 300.
 */
import type { QueueEntry } from '../store/index.js';

/** qshape's default buckets: upper bounds in minutes; the last column counts the rest. */
export const AGE_BUCKETS = [5, 10, 20, 40, 80, 160, 320, 640, 1280] as const;

export interface DomainRow {
  domain: string;
  /** all pending recipients of this domain */
  total: number;
  /** counts per bucket: [0,5), [5,10), … [640,1280), 1280+ minutes */
  ages: number[];
  paused: boolean;
  held: number;
}

export interface ReasonRow {
  /** the last delivery error with addresses, hosts, numbers and queue ids blurred, or "(not tried yet)" */
  reason: string;
  count: number;
  /** one unblurred example */
  example: string | null;
}

export interface QueueTotals {
  messages: number;
  recipients: number;
  total: DomainRow;
  domains: DomainRow[];
  reasons: ReasonRow[];
}

const NOT_TRIED = '(not tried yet)';
const REASON_MAX = 120;

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(at + 1)).toLowerCase();
}

function bucketOf(ageMs: number): number {
  const minutes = Math.max(0, ageMs) / 60_000;
  const i = AGE_BUCKETS.findIndex((limit) => minutes < limit);
  return i < 0 ? AGE_BUCKETS.length : i;
}

/**
 * Groups like reasons together: "<bob@x>", host names with addresses, IPs and numbers other than the
 * reply code vary per message and would make every reason its own row.
 */
export function reasonKey(reason: string | null): string {
  if (reason === null || reason.trim() === '') return NOT_TRIED;
  let s = reason
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/<[^<>\s]*>/g, '<…>')
    .replace(/\[[0-9a-fA-F:.]+\](?::\d+)?/g, '[…]')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, '…');
  // keep "451 4.4.1" at the front, blur other long numbers (ports, sizes, seconds, ids)
  s = s.replace(/^(\s*\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?)(.*)$/s, (_m, head: string, rest: string) => head + rest.replace(/\d{2,}/g, 'N'));
  s = s.replace(/\s+/g, ' ').trim();
  return s.length > REASON_MAX ? `${s.slice(0, REASON_MAX - 1)}…` : s;
}

function emptyRow(domain: string, paused: boolean): DomainRow {
  return { domain, total: 0, ages: AGE_BUCKETS.map(() => 0).concat(0), paused, held: 0 };
}

export function queueTotals(entries: readonly QueueEntry[], paused: ReadonlySet<string>, now: number): QueueTotals {
  const total = emptyRow('TOTAL', false);
  const byDomain = new Map<string, DomainRow>();
  const reasons = new Map<string, ReasonRow>();
  let recipients = 0;
  for (const e of entries) {
    const bucket = bucketOf(now - e.receivedAt);
    for (const r of e.recipients) {
      if (r.state !== 'pending') continue;
      recipients++;
      const domain = domainOf(r.address);
      let row = byDomain.get(domain);
      if (!row) byDomain.set(domain, (row = emptyRow(domain, paused.has(domain))));
      for (const x of [total, row]) {
        x.total++;
        x.ages[bucket] = (x.ages[bucket] ?? 0) + 1;
        if (e.state === 'held') x.held++;
      }
      const key = reasonKey(r.lastError);
      const seen = reasons.get(key);
      if (seen) seen.count++;
      else reasons.set(key, { reason: key, count: 1, example: r.lastError });
    }
  }
  const domains = [...byDomain.values()].sort((a, b) => b.total - a.total || (a.domain < b.domain ? -1 : 1));
  const reasonRows = [...reasons.values()].sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
  return { messages: entries.length, recipients, total, domains, reasons: reasonRows };
}

/** Keeps a one-line display safe: no control characters reach the terminal. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

export function formatTotals(t: QueueTotals): string {
  const heads = ['T', ...AGE_BUCKETS.map(String), `${AGE_BUCKETS[AGE_BUCKETS.length - 1]}+`];
  const rows = [t.total, ...t.domains];
  const names = rows.map((r) => printable(r.domain) + (r.paused ? ' (paused)' : ''));
  const nameWidth = Math.max(6, ...names.map((n) => n.length));
  const cols = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => String(i === 0 ? r.total : r.ages[i - 1] ?? 0).length)));
  const line = (name: string, cells: string[]): string => `${name.padStart(nameWidth)} ${cells.map((c, i) => c.padStart(cols[i] ?? 0)).join(' ')}\n`;
  let out = `pending recipients by destination and age in minutes (${t.recipients} in ${t.messages} message${t.messages === 1 ? '' : 's'})\n\n`;
  out += line('', heads);
  rows.forEach((r, i) => (out += line(names[i] ?? '', [String(r.total), ...r.ages.map(String)])));
  out += '\nby reason:\n';
  if (t.reasons.length === 0) out += '  (none)\n';
  const countWidth = Math.max(1, ...t.reasons.map((r) => String(r.count).length));
  for (const r of t.reasons) out += `  ${String(r.count).padStart(countWidth)}  ${printable(r.reason)}\n`;
  return out;
}
