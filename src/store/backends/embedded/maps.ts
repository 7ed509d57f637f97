/*
 * Lookup maps of the embedded backend (tables `lookup_maps` and `lookup_map_generations`). Synchronous,
 * run by the worker inside its transaction (each operation in its own savepoint), so the entries and the
 * generation bump commit together. Names, keys and values are checked by ../../maps-common.ts.
 */
import type { StoredMapEntry, StoredMapInfo, StoredMapReplaceResult } from '../../api.js';
import { StoreError } from '../../errors.js';
import { mapPageLimit, normalizeMapEntries, normalizeMapKey, normalizeMapName, normalizeMapValue } from '../../maps-common.js';
import { type OpContext, stmt } from './context.js';

interface EntryRow {
  key: string;
  value: string;
  updated_at: number;
  updated_by: string | null;
}

const toEntry = (r: EntryRow): StoredMapEntry => ({ key: r.key, value: r.value, updatedAt: r.updated_at, updatedBy: r.updated_by });

function bump(ctx: OpContext, map: string, now: number): number {
  const row = stmt(
    ctx,
    `INSERT INTO lookup_map_generations (name, generation, updated_at) VALUES (?, 1, ?)
     ON CONFLICT (name) DO UPDATE SET generation = generation + 1, updated_at = excluded.updated_at
     RETURNING generation`,
  ).get(map, now) as { generation: number };
  return row.generation;
}

export function mapOps(ctx: OpContext) {
  return {
    set(map: string, key: string, value: string, by: string | null, now: number): { created: boolean; generation: number } {
      const m = normalizeMapName(map);
      const k = normalizeMapKey(key);
      const v = normalizeMapValue(value, k);
      const created = !stmt(ctx, 'SELECT 1 FROM lookup_maps WHERE map = ? AND key = ?').get(m, k);
      stmt(
        ctx,
        `INSERT INTO lookup_maps (map, key, value, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (map, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ).run(m, k, v, now, by);
      return { created, generation: bump(ctx, m, now) };
    },
    delete(map: string, key: string, _by: string | null, now: number): number {
      const m = normalizeMapName(map);
      const k = normalizeMapKey(key);
      if (stmt(ctx, 'DELETE FROM lookup_maps WHERE map = ? AND key = ?').run(m, k).changes === 0) {
        throw new StoreError('not_found', `map ${m} has no entry ${k}`);
      }
      return bump(ctx, m, now);
    },
    get(map: string, key: string): StoredMapEntry | null {
      const r = stmt(ctx, 'SELECT key, value, updated_at, updated_by FROM lookup_maps WHERE map = ? AND key = ?').get(
        normalizeMapName(map),
        normalizeMapKey(key),
      ) as EntryRow | undefined;
      return r ? toEntry(r) : null;
    },
    list(map: string, options: { after?: string; limit?: number } = {}): StoredMapEntry[] {
      const m = normalizeMapName(map);
      const limit = mapPageLimit(options.limit);
      const rows = (
        options.after === undefined
          ? stmt(ctx, 'SELECT key, value, updated_at, updated_by FROM lookup_maps WHERE map = ? ORDER BY key LIMIT ?').all(m, limit)
          : stmt(ctx, 'SELECT key, value, updated_at, updated_by FROM lookup_maps WHERE map = ? AND key > ? ORDER BY key LIMIT ?').all(m, options.after, limit)
      ) as EntryRow[];
      return rows.map(toEntry);
    },
    replace(map: string, entries: readonly { key: string; value: string }[], by: string | null, now: number): StoredMapReplaceResult {
      const m = normalizeMapName(map);
      const wanted = normalizeMapEntries(entries);
      const current = new Map(
        (stmt(ctx, 'SELECT key, value FROM lookup_maps WHERE map = ?').all(m) as { key: string; value: string }[]).map((r) => [r.key, r.value]),
      );
      let removed = 0;
      const del = stmt(ctx, 'DELETE FROM lookup_maps WHERE map = ? AND key = ?');
      for (const key of current.keys()) {
        if (!wanted.has(key)) {
          del.run(m, key);
          removed++;
        }
      }
      let added = 0;
      let changed = 0;
      const upsert = stmt(
        ctx,
        `INSERT INTO lookup_maps (map, key, value, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (map, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      );
      for (const [key, value] of wanted) {
        const old = current.get(key);
        if (old === value) continue;
        if (old === undefined) added++;
        else changed++;
        upsert.run(m, key, value, now, by);
      }
      return { added, changed, removed, unchanged: wanted.size - added - changed, generation: bump(ctx, m, now) };
    },
    generations(maps: readonly string[]): Record<string, number> {
      const out: Record<string, number> = {};
      const one = stmt(ctx, 'SELECT generation FROM lookup_map_generations WHERE name = ?');
      for (const name of maps) {
        const n = normalizeMapName(name);
        out[n] = (one.get(n) as { generation: number } | undefined)?.generation ?? 0;
      }
      return out;
    },
    maps(): StoredMapInfo[] {
      const rows = stmt(
        ctx,
        `SELECT g.name, g.generation, g.updated_at, (SELECT COUNT(*) FROM lookup_maps m WHERE m.map = g.name) AS entries
         FROM lookup_map_generations g ORDER BY g.name`,
      ).all() as { name: string; generation: number; updated_at: number; entries: number }[];
      return rows.map((r) => ({ name: r.name, entries: r.entries, generation: r.generation, updatedAt: r.updated_at }));
    },
  };
}
