/*
 * Content-addressed message bytes in the `blobs` table, with a reference count per blob.
 * Owns refcounting: the queue and the message store add and drop references only through the helpers
 * and SQL fragments below, inside their own statements and transactions. Never deletes a referenced blob; never serves bytes that do not
 * match their hash (`corrupt`). Missing blobs are `not_found`; driver failures become StoreErrors.
 */
import type { BlobId, BlobStore } from '../../api.js';
import { sha256, verifyBlob } from '../../common.js';
import { StoreError } from '../../errors.js';
import type { Db, Sql } from './db.js';

/**
 * SQL (for a CTE) that stores content if new and takes one reference; yields the id. Parameters are
 * given by placeholder, e.g. upsertBlobSql('$1', '$2', '$3', '$4'). A concurrent collect() cannot win:
 * it deletes only rows with refcount 0, and ON CONFLICT inserts again if the row vanished under it.
 */
export function upsertBlobSql(id: string, size: string, content: string, now: string): string {
  return `INSERT INTO blobs (id, size, content, refcount, created_at) VALUES (${id}, ${size}, ${content}, 1, ${now})
          ON CONFLICT (id) DO UPDATE SET refcount = blobs.refcount + 1 RETURNING id`;
}

/** SQL (for a CTE) that takes one more reference to an existing blob; yields no row when it is missing. */
export function refBlobSql(id: string): string {
  return `UPDATE blobs SET refcount = refcount + 1 WHERE id = ${id} RETURNING id`;
}

/** Takes one reference per element of `ids` (an id may repeat). */
export async function addRefs(sql: Sql, ids: readonly BlobId[]): Promise<void> {
  await changeRefs(sql, ids, 1);
}

/** Drops one reference per element of `ids`; the rows stay until collect() so that a racing put is safe. */
export async function dropRefs(sql: Sql, ids: readonly BlobId[]): Promise<void> {
  await changeRefs(sql, ids, -1);
}

async function changeRefs(sql: Sql, ids: readonly BlobId[], sign: 1 | -1): Promise<void> {
  if (ids.length === 0) return;
  const counts = new Map<BlobId, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  // sorted so that transactions touching the same blobs lock them in the same order
  const sorted = [...counts.keys()].sort();
  await sql.query(
    `UPDATE blobs SET refcount = GREATEST(blobs.refcount + d.n, 0)
       FROM unnest($1::text[], $2::int[]) AS d (id, n)
      WHERE blobs.id = d.id`,
    [sorted, sorted.map((id) => sign * (counts.get(id) ?? 0))],
  );
}

export async function readBlob(db: Db, id: BlobId): Promise<Buffer> {
  const rows = await db.query<{ content: Buffer }>('blobs.get', 'SELECT content FROM blobs WHERE id = $1', [id]);
  const row = rows[0];
  if (!row) throw new StoreError('not_found', `blob ${id} not found`);
  return verifyBlob(id, row.content);
}

export class PgBlobs implements BlobStore {
  constructor(private readonly db: Db) {}

  async put(content: Buffer): Promise<{ id: BlobId; size: number }> {
    const id = sha256(content);
    // Refreshing created_at restarts the grace period, so a blob put again just before a collect()
    // survives until the caller references it.
    await this.db.query(
      'blobs.put',
      `INSERT INTO blobs (id, size, content, refcount, created_at) VALUES ($1, $2, $3, 0, $4)
       ON CONFLICT (id) DO UPDATE SET created_at = GREATEST(blobs.created_at, EXCLUDED.created_at)`,
      [id, content.length, content, Date.now()],
    );
    return { id, size: content.length };
  }

  get(id: BlobId): Promise<Buffer> {
    return readBlob(this.db, id);
  }

  async collect(now: number, graceMs: number): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      'blobs.collect',
      // The NOT EXISTS guards cost an index probe each and keep a refcount bug from becoming data loss.
      `WITH gone AS (
         DELETE FROM blobs b WHERE b.refcount = 0 AND b.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
            AND NOT EXISTS (SELECT 1 FROM queue_entries q WHERE q.blob_id = b.id)
         RETURNING 1)
       SELECT count(*) AS n FROM gone`,
      [now - graceMs],
    );
    return rows[0]?.n ?? 0;
  }

  async refs(id: BlobId): Promise<number | null> {
    const rows = await this.db.query<{ refcount: number }>('blobs.refs', 'SELECT refcount FROM blobs WHERE id = $1', [id]);
    return rows[0]?.refcount ?? null;
  }
}
