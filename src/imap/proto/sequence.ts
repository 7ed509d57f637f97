/*
 * Sequence sets (RFC 9051 §9 sequence-set): "1:4,7,9:*" and "$" (the saved search result, RFC 5182).
 * Parsing is separate from resolving because the same set means message numbers or UIDs depending on
 * the command, and "*" is only known against a session's view of the mailbox. Pure.
 */
import { ImapParseError } from './tokens.js';

/** `'*'` is the largest number in use (the last message, or the highest UID). */
export type SeqBound = number | '*';

export interface SeqRange {
  from: SeqBound;
  to: SeqBound;
}

export type SequenceSet = { saved: true } | { saved: false; ranges: SeqRange[] };

const MAX = 0xffffffff;
/** more ranges than this in one set is abuse, not a mail client */
const MAX_RANGES = 100_000;

function bound(text: string): SeqBound {
  if (text === '*') return '*';
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new ImapParseError(`Invalid sequence number "${text.slice(0, 20)}"`);
  const n = Number(text);
  if (n > MAX) throw new ImapParseError('Sequence number out of range');
  return n;
}

export function parseSequenceSet(text: string): SequenceSet {
  if (text === '$') return { saved: true };
  if (text === '') throw new ImapParseError('Empty sequence set');
  const items = text.split(',');
  if (items.length > MAX_RANGES) throw new ImapParseError('Sequence set too long');
  const ranges: SeqRange[] = [];
  for (const item of items) {
    const ends = item.split(':');
    if (ends.length === 1) {
      const b = bound(ends[0]!);
      ranges.push({ from: b, to: b });
    } else if (ends.length === 2) {
      ranges.push({ from: bound(ends[0]!), to: bound(ends[1]!) });
    } else {
      throw new ImapParseError(`Invalid sequence range "${item.slice(0, 20)}"`);
    }
  }
  return { saved: false, ranges };
}

export function isSequenceSet(text: string): boolean {
  try {
    parseSequenceSet(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The numbers of `ranges` that are present in `sorted` (ascending, distinct), ascending. `*` is the last
 * element of `sorted` (or 0 when empty). Cost: O(ranges · log n + result).
 */
export function resolveAgainst(ranges: SeqRange[], sorted: ArrayLike<number>): number[] {
  const n = sorted.length;
  const star = n > 0 ? sorted[n - 1]! : 0;
  const picked: [number, number][] = [];
  for (const r of ranges) {
    let a = r.from === '*' ? star : r.from;
    let b = r.to === '*' ? star : r.to;
    if (a > b) [a, b] = [b, a];
    const lo = lowerBound(sorted, a);
    const hi = lowerBound(sorted, b + 1);
    if (hi > lo) picked.push([lo, hi]);
  }
  return indexesToValues(picked, sorted);
}

/** Sequence-number resolution: indexes (0-based) of messages 1..n named by `ranges`, ascending. */
export function resolveSeqIndexes(ranges: SeqRange[], count: number): number[] {
  const picked: [number, number][] = [];
  for (const r of ranges) {
    let a = r.from === '*' ? count : r.from;
    let b = r.to === '*' ? count : r.to;
    if (a > b) [a, b] = [b, a];
    a = Math.max(a, 1);
    b = Math.min(b, count);
    if (b >= a) picked.push([a - 1, b]);
  }
  return mergeIndexes(picked);
}

/** True when a message number range names messages beyond `count` (RFC 9051: BAD for invalid numbers). */
export function seqOutOfRange(ranges: SeqRange[], count: number): boolean {
  return ranges.some((r) => (r.from !== '*' && r.from > count) || (r.to !== '*' && r.to > count));
}

function mergeIndexes(picked: [number, number][]): number[] {
  picked.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  let last = -1;
  for (const [lo, hi] of picked) {
    for (let i = Math.max(lo, last + 1); i < hi; i++) out.push(i);
    last = Math.max(last, hi - 1);
  }
  return out;
}

function indexesToValues(picked: [number, number][], sorted: ArrayLike<number>): number[] {
  return mergeIndexes(picked).map((i) => sorted[i]!);
}

export function lowerBound(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Compact text form of ascending distinct numbers: "1:3,7,9:10" (for COPYUID, ESEARCH, VANISHED). */
export function formatSet(values: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < values.length) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    out.push(j === i ? String(values[i]) : `${values[i]}:${values[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Like formatSet but keeps the given order (COPYUID pairs must stay aligned). */
export function formatOrderedSet(values: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < values.length) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    out.push(j === i ? String(values[i]) : `${values[i]}:${values[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
