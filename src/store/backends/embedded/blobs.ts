/*
 * Blobs of the embedded backend: their bytes (blobs, a row written once), reference counts and ages
 * (blob_refs) and garbage collection.
 * Small blobs live in the row itself so they share the group commit; large ones live in files
 * (blobfiles.ts): such a row is created or referenced only after its file is durable, and the file's
 * existence is re-checked here, inside the transaction, so a concurrent collect cannot orphan a row.
 */
import * as zlib from 'node:zlib';
import type { BlobId } from '../../api.js';
import { sha256 } from '../../common.js';
import { StoreError } from '../../errors.js';
import { type OpContext, stmt } from './context.js';

export const BLOB_FILE_MISSING = 'blob file missing';

/** Bytes that travel with a request: inline content, or null when the blob is a durable file. */
export type InlineContent = Uint8Array | null;

/** A Buffer view of bytes that crossed from a worker (as a plain Uint8Array), without a copy. */
export const asBuffer = (c: Uint8Array): Buffer => Buffer.from(c.buffer, c.byteOffset, c.byteLength);

// zlib.crc32 is Node 20.15+; without it rows get no CRC and reads check the SHA-256 of the id
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** Rows with a CRC-32 are checked by it alone: a read needs the blob id only of rows without one. */
export const CHECKS_BY_CRC = crc32 !== undefined;

/**
 * Whether inline bytes are what was stored: the row's CRC-32 where it has one (any accidental damage
 * shows; the id's SHA-256, at three times the cost per read, guards content addressing at write time),
 * else the id itself (null: not read, see CHECKS_BY_CRC).
 */
export function inlineIntact(id: BlobId | null, content: Uint8Array, crc: number | null): boolean {
  return crc !== null && crc32 ? crc32(content) === crc : id !== null && sha256(asBuffer(content)) === id;
}

/** The error for stored bytes that are not what was stored; `what` names them (a blob, a message). */
export function corrupt(what: string): StoreError {
  return new StoreError('corrupt', `${what} does not match what was stored`);
}

/** Throws `corrupt` unless the inline bytes of blob `id` are intact (inlineIntact). */
export function checkInline(id: BlobId, content: Uint8Array, crc: number | null): void {
  if (!inlineIntact(id, content, crc)) throw corrupt(`blob ${id}`);
}

function upsertBlob(ctx: OpContext, id: BlobId, size: number, now: number, inline: InlineContent, refs: 0 | 1): void {
  if (inline === null && !ctx.blobFileExists(id)) throw new StoreError('not_found', `${BLOB_FILE_MISSING}: ${id}`);
  // the bytes' row is written once and never updated (see migration 10); counts change in blob_refs
  stmt(ctx, 'INSERT INTO blobs (id, size, content, crc32, refcount, created_at) VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING').run(
    id,
    size,
    inline === null ? null : asBuffer(inline),
    inline === null || !crc32 ? null : crc32(inline),
    now,
  );
  stmt(
    ctx,
    'INSERT INTO blob_refs (id, refcount, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET refcount = refcount + excluded.refcount',
  ).run(id, refs, now);
}

/** Adds one reference to a blob, creating the row (with its inline content) if needed. */
export function refBlob(ctx: OpContext, id: BlobId, size: number, now: number, inline: InlineContent): void {
  upsertBlob(ctx, id, size, now, inline, 1);
}

/** Adds one reference to a blob that must already have a row; returns its size. */
export function refExistingBlob(ctx: OpContext, id: BlobId): number {
  const row = stmt(ctx, 'SELECT size, content IS NULL AS in_file FROM blobs WHERE id = ?').get(id) as { size: number; in_file: number } | undefined;
  if (!row || (row.in_file && !ctx.blobFileExists(id))) throw new StoreError('not_found', `blob ${id} not found`);
  stmt(ctx, 'UPDATE blob_refs SET refcount = refcount + 1 WHERE id = ?').run(id);
  return row.size;
}

/**
 * A blob's bytes as stored: the inline content, checked against its id here in the worker (a reader
 * thread, off the event loop of the protocol servers), 'file' when the bytes are in a file (the caller
 * reads and checks those), null when the blob is unknown.
 */
export function blobContent(ctx: OpContext, id: BlobId): Buffer | 'file' | null {
  const row = stmt(ctx, 'SELECT content, crc32 FROM blobs WHERE id = ?').get(id) as { content: Buffer | null; crc32: number | null } | undefined;
  if (!row) return null;
  if (row.content === null) return 'file';
  checkInline(id, row.content, row.crc32);
  return row.content;
}

export function unrefBlob(ctx: OpContext, id: BlobId, count = 1): void {
  stmt(ctx, 'UPDATE blob_refs SET refcount = MAX(refcount - ?, 0) WHERE id = ?').run(count, id);
}

export function blobOps(ctx: OpContext) {
  return {
    register(id: BlobId, size: number, now: number, inline: InlineContent): void {
      upsertBlob(ctx, id, size, now, inline, 0);
    },
    /** The inline bytes (already checked against the id), 'file' when they are in a file, null when unknown. */
    fetch(id: BlobId): Uint8Array | 'file' | null {
      return blobContent(ctx, id);
    },
    refs(id: BlobId): number | null {
      const row = stmt(ctx, 'SELECT refcount FROM blob_refs WHERE id = ?').get(id) as { refcount: number } | undefined;
      return row ? row.refcount : null;
    },
    /** Removes unreferenced rows (and their files) and the given stray files that have no row. */
    collect(now: number, graceMs: number, strayCandidates: BlobId[]): number {
      const dead = stmt(
        ctx,
        'SELECT r.id, b.content IS NULL AS in_file FROM blob_refs r JOIN blobs b ON b.id = r.id WHERE r.refcount = 0 AND r.created_at < ?',
      ).all(now - graceMs) as {
        id: string;
        in_file: number;
      }[];
      for (const { id, in_file } of dead) {
        stmt(ctx, 'DELETE FROM blob_refs WHERE id = ?').run(id);
        stmt(ctx, 'DELETE FROM blobs WHERE id = ?').run(id);
        if (in_file) ctx.unlinkBlobFile(id);
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
