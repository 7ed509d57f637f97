/*
 * How CLI results look: aligned human tables by default, JSON with --json (stable keys, ISO times,
 * never a password hash). Pure formatting plus one `emit` that writes through the injected Io.
 */
import type { Account, Alias, Domain } from '../store/index.js';
import type { Io } from './context.js';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Prints `value` as JSON with --json, else the human text (a table or a sentence). */
export function emit(io: Io, json: boolean, value: unknown, human: () => string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : human());
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function domainView(d: Domain): { name: string; createdAt: string } {
  return { name: d.name, createdAt: formatTime(d.createdAt) };
}

export function accountView(a: Account): {
  address: string;
  domain: string;
  hasPassword: boolean;
  quotaBytes: number | null;
  createdAt: string;
} {
  return {
    address: a.address,
    domain: a.domain,
    hasPassword: a.passwordHash !== null,
    quotaBytes: a.quotaBytes,
    createdAt: formatTime(a.createdAt),
  };
}

export function aliasView(a: Alias): Alias {
  return { source: a.source, targets: [...a.targets] };
}
