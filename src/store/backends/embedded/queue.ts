/*
 * Queue operations of the embedded backend. Leasing and completion run in the worker's single
 * writer, so the token check and the state change share one transaction; a stale token is refused
 * with `stale_lease` before anything is written. Never reads or writes message bytes.
 */
import type { BlobId, CompleteResult, Lease, LeaseRequest, QueueCounts, QueueEntry, QueueEntryState, QueueRecipientInput, RecipientOutcome } from '../../api.js';
import { StoreError } from '../../errors.js';
import { type InlineContent, refBlob, unrefBlob } from './blobs.js';
import { type OpContext, stmt } from './context.js';

interface EntryRow {
  id: string;
  sender: string;
  meta: string;
  blob_id: string;
  size: number;
  received_at: number;
  state: QueueEntryState;
  due_at: number;
  attempts: number;
  lease_owner: string | null;
  lease_token: number;
  lease_expires_at: number | null;
}

interface RecipientRow {
  id: number;
  address: string;
  orcpt: string | null;
  notify: string | null;
  state: 'pending' | 'done' | 'failed';
  attempts: number;
  last_error: string | null;
}

export interface CommitRow {
  id: string;
  sender: string;
  recipients: QueueRecipientInput[];
  blobId: BlobId;
  size: number;
  inline: InlineContent;
  meta: Record<string, unknown>;
  hold: boolean;
  dueAt: number;
  now: number;
}

function toEntry(ctx: OpContext, r: EntryRow): QueueEntry {
  const rcpts = stmt(ctx, 'SELECT * FROM queue_recipients WHERE queue_id = ? ORDER BY id').all(r.id) as RecipientRow[];
  return {
    id: r.id,
    sender: r.sender,
    meta: JSON.parse(r.meta) as Record<string, unknown>,
    blobId: r.blob_id,
    size: r.size,
    receivedAt: r.received_at,
    state: r.state,
    dueAt: r.due_at,
    attempts: r.attempts,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at,
    recipients: rcpts.map((x) => ({
      id: x.id,
      address: x.address,
      orcpt: x.orcpt,
      notify: x.notify === null ? null : (JSON.parse(x.notify) as string[]),
      state: x.state,
      attempts: x.attempts,
      lastError: x.last_error,
    })),
  };
}

function entryRow(ctx: OpContext, id: string): EntryRow {
  const r = stmt(ctx, 'SELECT * FROM queue WHERE id = ?').get(id) as EntryRow | undefined;
  if (!r) throw new StoreError('not_found', `queue entry ${id} not found`);
  return r;
}

function fencedRow(ctx: OpContext, id: string, token: number): EntryRow {
  const r = stmt(ctx, 'SELECT * FROM queue WHERE id = ?').get(id) as EntryRow | undefined;
  // a released lease (after complete) is as stale as one taken over by another holder
  if (!r || r.lease_token !== token || r.lease_expires_at === null) {
    throw new StoreError('stale_lease', `lease token ${token} on ${id} is no longer valid`);
  }
  return r;
}

function removeEntry(ctx: OpContext, r: EntryRow): void {
  stmt(ctx, 'DELETE FROM queue_recipients WHERE queue_id = ?').run(r.id);
  stmt(ctx, 'DELETE FROM queue WHERE id = ?').run(r.id);
  unrefBlob(ctx, r.blob_id);
}

function recordOutcome(ctx: OpContext, id: string, o: RecipientOutcome): number | null {
  const state = o.outcome === 'deferred' ? 'pending' : o.outcome;
  const info = stmt(
    ctx,
    "UPDATE queue_recipients SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ? AND queue_id = ? AND state = 'pending'",
  ).run(state, o.reason ?? null, o.recipientId, id);
  if (info.changes === 0) throw new StoreError('invalid', `recipient ${o.recipientId} of ${id} is not pending`);
  return o.outcome === 'deferred' ? o.retryAt : null;
}

/** Due now, unless a holder has a live lease: then when it runs out, so the holder is not raced. */
const DUE_NOW = 'CASE WHEN lease_expires_at > ? THEN lease_expires_at ELSE ? END';

export function queueOps(ctx: OpContext) {
  return {
    commit(c: CommitRow): void {
      refBlob(ctx, c.blobId, c.size, c.now, c.inline);
      stmt(ctx, 'INSERT INTO queue (id, sender, meta, blob_id, size, received_at, state, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        c.id,
        c.sender,
        JSON.stringify(c.meta),
        c.blobId,
        c.size,
        c.now,
        c.hold ? 'held' : 'active',
        c.dueAt,
      );
      const ins = stmt(ctx, "INSERT INTO queue_recipients (queue_id, address, orcpt, notify, state) VALUES (?, ?, ?, ?, 'pending')");
      for (const r of c.recipients) ins.run(c.id, r.address, r.orcpt ?? null, r.notify ? JSON.stringify(r.notify) : null);
    },
    lease(req: LeaseRequest): Lease[] {
      const rows = stmt(ctx, "SELECT * FROM queue WHERE state = 'active' AND due_at <= ? ORDER BY due_at LIMIT ?").all(
        req.now,
        req.limit,
      ) as EntryRow[];
      const expiresAt = req.now + req.leaseMs;
      const upd = stmt(
        ctx,
        'UPDATE queue SET lease_token = lease_token + 1, lease_owner = ?, lease_expires_at = ?, due_at = ?, attempts = attempts + 1 WHERE id = ?',
      );
      return rows.map((r) => {
        upd.run(req.owner, expiresAt, expiresAt, r.id);
        return { entry: toEntry(ctx, entryRow(ctx, r.id)), token: r.lease_token + 1, expiresAt };
      });
    },
    renew(id: string, token: number, leaseMs: number, now: number): number {
      fencedRow(ctx, id, token);
      const expiresAt = now + leaseMs;
      stmt(ctx, 'UPDATE queue SET lease_expires_at = ?, due_at = ? WHERE id = ?').run(expiresAt, expiresAt, id);
      return expiresAt;
    },
    complete(id: string, token: number, outcomes: RecipientOutcome[], now: number): CompleteResult {
      const row = fencedRow(ctx, id, token);
      let nextDue = Number.POSITIVE_INFINITY;
      for (const o of outcomes) {
        const retryAt = recordOutcome(ctx, id, o);
        if (retryAt !== null) nextDue = Math.min(nextDue, retryAt);
      }
      const named = new Set(outcomes.map((o) => o.recipientId));
      const pending = stmt(ctx, "SELECT id FROM queue_recipients WHERE queue_id = ? AND state = 'pending'").all(id) as { id: number }[];
      if (pending.length === 0) {
        removeEntry(ctx, row);
        return { pending: 0, removed: true };
      }
      if (pending.some((p) => !named.has(p.id))) nextDue = Math.min(nextDue, now);
      stmt(ctx, 'UPDATE queue SET lease_owner = NULL, lease_expires_at = NULL, due_at = ? WHERE id = ?').run(nextDue, id);
      return { pending: pending.length, removed: false };
    },
    hold(id: string): void {
      entryRow(ctx, id);
      stmt(ctx, "UPDATE queue SET state = 'held' WHERE id = ?").run(id);
    },
    release(id: string, now: number): void {
      entryRow(ctx, id);
      stmt(ctx, `UPDATE queue SET state = 'active', due_at = ${DUE_NOW} WHERE id = ?`).run(now, now, id);
    },
    requeue(id: string, now: number): void {
      entryRow(ctx, id);
      stmt(ctx, `UPDATE queue SET due_at = ${DUE_NOW} WHERE id = ?`).run(now, now, id);
    },
    remove(id: string): void {
      removeEntry(ctx, entryRow(ctx, id));
    },
    get(id: string): QueueEntry | null {
      const r = stmt(ctx, 'SELECT * FROM queue WHERE id = ?').get(id) as EntryRow | undefined;
      return r ? toEntry(ctx, r) : null;
    },
    list(filter: { state?: QueueEntryState; limit?: number } = {}): QueueEntry[] {
      const limit = filter.limit ?? -1;
      const rows = (filter.state
        ? stmt(ctx, 'SELECT * FROM queue WHERE state = ? ORDER BY received_at, id LIMIT ?').all(filter.state, limit)
        : stmt(ctx, 'SELECT * FROM queue ORDER BY received_at, id LIMIT ?').all(limit)) as EntryRow[];
      return rows.map((r) => toEntry(ctx, r));
    },
    counts(now: number): QueueCounts {
      return stmt(
        ctx,
        `SELECT COALESCE(SUM(state = 'active'), 0) AS active, COALESCE(SUM(state = 'held'), 0) AS held,
                COALESCE(SUM(lease_expires_at > ?), 0) AS leased, COALESCE(SUM(state = 'active' AND due_at <= ?), 0) AS due FROM queue`,
      ).get(now, now) as QueueCounts;
    },
    blobOf(id: string): BlobId {
      return entryRow(ctx, id).blob_id;
    },
  };
}
