/*
 * Lookup maps of the postgres backend (tables `lookup_maps` and `lookup_map_generations`), shared by
 * every node of a cluster. Every write bumps the map's generation row first, in the same transaction:
 * that row lock serialises writers of one map, and a reader that sees the new generation sees the
 * committed entries. Names, keys and values are checked by ../../maps-common.ts (`invalid`).
 */
import type { MapStore, StoredMapEntry, StoredMapInfo, StoredMapReplaceResult } from '../../api.js';
import { StoreError } from '../../errors.js';
import { mapPageLimit, normalizeMapEntries, normalizeMapKey, normalizeMapName, normalizeMapValue } from '../../maps-common.js';
import type { Db, Sql } from './db.js';

interface EntryRow {
  key: string;
  value: string;
  updated_at: number;
  updated_by: string | null;
}

const COLUMNS = 'key, value, updated_at, updated_by';
const toEntry = (r: EntryRow): StoredMapEntry => ({ key: r.key, value: r.value, updatedAt: r.updated_at, updatedBy: r.updated_by });

/** Rows per INSERT of an import: well under the 65535 parameters of one statement. */
const IMPORT_BATCH = 5000;

async function bump(sql: Sql, map: string, now: number): Promise<number> {
  const rows = (
    await sql.query<{ generation: number }>(
      `INSERT INTO lookup_map_generations (name, generation, updated_at) VALUES ($1, 1, $2)
       ON CONFLICT (name) DO UPDATE SET generation = lookup_map_generations.generation + 1, updated_at = EXCLUDED.updated_at
       RETURNING generation`,
      [map, now],
    )
  ).rows;
  return rows[0]!.generation;
}

export class PgMaps implements MapStore {
  constructor(private readonly db: Db) {}

  async set(map: string, key: string, value: string, by: string | null, now: number): Promise<{ created: boolean; generation: number }> {
    const m = normalizeMapName(map);
    const k = normalizeMapKey(key);
    const v = normalizeMapValue(value, k);
    return this.db.tx('maps.set', async (sql) => {
      const generation = await bump(sql, m, now);
      // xmax = 0 only for a freshly inserted row
      const rows = (
        await sql.query<{ created: boolean }>(
          `INSERT INTO lookup_maps (map, key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (map, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
           RETURNING (xmax = 0) AS created`,
          [m, k, v, now, by],
        )
      ).rows;
      return { created: rows[0]?.created ?? false, generation };
    });
  }

  async delete(map: string, key: string, _by: string | null, now: number): Promise<number> {
    const m = normalizeMapName(map);
    const k = normalizeMapKey(key);
    return this.db.tx('maps.delete', async (sql) => {
      const gone = (await sql.query('DELETE FROM lookup_maps WHERE map = $1 AND key = $2 RETURNING key', [m, k])).rows;
      if (gone.length === 0) throw new StoreError('not_found', `map ${m} has no entry ${k}`);
      return bump(sql, m, now);
    });
  }

  async get(map: string, key: string): Promise<StoredMapEntry | null> {
    const rows = await this.db.query<EntryRow>('maps.get', `SELECT ${COLUMNS} FROM lookup_maps WHERE map = $1 AND key = $2`, [
      normalizeMapName(map),
      normalizeMapKey(key),
    ]);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  async list(map: string, options: { after?: string; limit?: number } = {}): Promise<StoredMapEntry[]> {
    const rows = await this.db.query<EntryRow>(
      'maps.list',
      `SELECT ${COLUMNS} FROM lookup_maps WHERE map = $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`,
      [normalizeMapName(map), options.after ?? null, mapPageLimit(options.limit)],
    );
    return rows.map(toEntry);
  }

  async replace(map: string, entries: readonly { key: string; value: string }[], by: string | null, now: number): Promise<StoredMapReplaceResult> {
    const m = normalizeMapName(map);
    const wanted = normalizeMapEntries(entries);
    return this.db.tx('maps.replace', async (sql) => {
      const generation = await bump(sql, m, now);
      const current = new Map(
        (await sql.query<{ key: string; value: string }>('SELECT key, value FROM lookup_maps WHERE map = $1', [m])).rows.map((r) => [r.key, r.value]),
      );
      const gone = [...current.keys()].filter((k) => !wanted.has(k));
      if (gone.length > 0) await sql.query('DELETE FROM lookup_maps WHERE map = $1 AND key = ANY($2::text[])', [m, gone]);
      const write: [string, string][] = [];
      let added = 0;
      for (const [key, value] of wanted) {
        const old = current.get(key);
        if (old === value) continue;
        if (old === undefined) added++;
        write.push([key, value]);
      }
      for (let i = 0; i < write.length; i += IMPORT_BATCH) {
        const batch = write.slice(i, i + IMPORT_BATCH);
        await sql.query(
          `INSERT INTO lookup_maps (map, key, value, updated_at, updated_by)
           SELECT $1, k, v, $4, $5 FROM unnest($2::text[], $3::text[]) AS t(k, v)
           ON CONFLICT (map, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
          [m, batch.map((e) => e[0]), batch.map((e) => e[1]), now, by],
        );
      }
      return { added, changed: write.length - added, removed: gone.length, unchanged: wanted.size - write.length, generation };
    });
  }

  async generations(maps: readonly string[]): Promise<Record<string, number>> {
    const names = maps.map(normalizeMapName);
    const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    if (names.length === 0) return out;
    const rows = await this.db.query<{ name: string; generation: number }>(
      'maps.generations',
      'SELECT name, generation FROM lookup_map_generations WHERE name = ANY($1::text[])',
      [names],
    );
    for (const r of rows) out[r.name] = r.generation;
    return out;
  }

  async maps(): Promise<StoredMapInfo[]> {
    const rows = await this.db.query<{ name: string; generation: number; updated_at: number; entries: number }>(
      'maps.maps',
      `SELECT g.name, g.generation, g.updated_at, (SELECT COUNT(*) FROM lookup_maps m WHERE m.map = g.name)::int AS entries
       FROM lookup_map_generations g ORDER BY g.name`,
    );
    return rows.map((r) => ({ name: r.name, entries: r.entries, generation: r.generation, updatedAt: r.updated_at }));
  }
}
