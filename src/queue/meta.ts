/*
 * What commit-time expansion leaves in a queue entry's meta for the delivery side: `expanded` (original
 * recipient → final addresses, only where they differ) and `undeliverable` (final address → the reason
 * it fails without a delivery attempt, e.g. an alias loop). Pure; reading tolerates any JSON found
 * there (meta is shared with other modules and with older entries) and never throws.
 */

export interface ExpansionRecord {
  expanded: Record<string, string[]>;
  undeliverable: Record<string, string>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readExpansion(meta: Record<string, unknown>): ExpansionRecord {
  const expanded: Record<string, string[]> = {};
  const undeliverable: Record<string, string> = {};
  if (isRecord(meta.expanded)) {
    for (const [orig, finals] of Object.entries(meta.expanded)) {
      if (Array.isArray(finals)) expanded[orig] = finals.filter((f): f is string => typeof f === 'string');
    }
  }
  if (isRecord(meta.undeliverable)) {
    for (const [addr, reason] of Object.entries(meta.undeliverable)) {
      if (typeof reason === 'string') undeliverable[addr] = reason;
    }
  }
  return { expanded, undeliverable };
}

/** final address → the original recipient it came from (the first one, when several lead to it). */
export function originalRecipients(record: ExpansionRecord): Map<string, string> {
  const out = new Map<string, string>();
  for (const [orig, finals] of Object.entries(record.expanded)) {
    for (const f of finals) if (!out.has(f)) out.set(f, orig);
  }
  return out;
}
