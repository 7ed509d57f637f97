/*
 * Blob rows of the embedded backend: reference counts and garbage collection. The bytes live in files
 * (blobfiles.ts); a row is created or referenced only after its file is durable, and the file's
 * existence is re-checked here, inside the transaction, so a concurrent collect cannot orphan a row.
 */
import type { BlobId } from '../../api.js';
import { StoreError } from '../../errors.js';
import { type OpContext, stmt } from './context.js';

export const BLOB_FILE_MISSING = 'blob file missing';

/** Adds one reference to a blob whose file is already durable, creating the row if needed. */
export function refBlob(ctx: OpContext, id: BlobId, size: number, now: number): void {
  if (!ctx.blobFileExists(id)) throw new StoreError('not_found', `${BLOB_FILE_MISSING}: ${id}`);
  stmt(ctx, 'INSERT INTO blobs (id, size, refcount, created_at) VALUES (?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET refcount = refcount + 1').run(
    id,
    size,
    now,
  );
}

/** Adds one reference to a blob that must already have a row; returns its size. */
export function refExistingBlob(ctx: OpContext, id: BlobId): number {
  const row = stmt(ctx, 'SELECT size FROM blobs WHERE id = ?').get(id) as { size: number } | undefined;
  if (!row || !ctx.blobFileExists(id)) throw new StoreError('not_found', `blob ${id} not found`);
  stmt(ctx, 'UPDATE blobs SET refcount = refcount + 1 WHERE id = ?').run(id);
  return row.size;
}

export function unrefBlob(ctx: OpContext, id: BlobId, count = 1): void {
  stmt(ctx, 'UPDATE blobs SET refcount = MAX(refcount - ?, 0) WHERE id = ?').run(count, id);
}

export function blobOps(ctx: OpContext) {
  return {
    register(id: BlobId, size: number, now: number): void {
      if (!ctx.blobFileExists(id)) throw new StoreError('not_found', `${BLOB_FILE_MISSING}: ${id}`);
      stmt(ctx, 'INSERT INTO blobs (id, size, refcount, created_at) VALUES (?, ?, 0, ?) ON CONFLICT (id) DO NOTHING').run(id, size, now);
    },
    refs(id: BlobId): number | null {
      const row = stmt(ctx, 'SELECT refcount FROM blobs WHERE id = ?').get(id) as { refcount: number } | undefined;
      return row ? row.refcount : null;
    },
    /** Removes unreferenced rows (and their files) and the given stray files that have no row. */
    collect(now: number, graceMs: number, strayCandidates: BlobId[]): number {
      const dead = stmt(ctx, 'SELECT id FROM blobs WHERE refcount = 0 AND created_at < ?').all(now - graceMs) as { id: string }[];
      for (const { id } of dead) {
        stmt(ctx, 'DELETE FROM blobs WHERE id = ?').run(id);
        ctx.unlinkBlobFile(id);
      }
      let strays = 0;
      for (const id of strayCandidates) {
        if (stmt(ctx, 'SELECT 1 FROM blobs WHERE id = ?').get(id)) continue;
        if (ctx.unlinkBlobFile(id)) strays++;
      }
      return dead.length + strays;
    },
  };
}
