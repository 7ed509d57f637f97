/*
 * Queue operations of the embedded backend. Leasing and completion run in the worker's single
 * writer, so the token check and the state change share one transaction; a stale token is refused
 * with `stale_lease` before anything is written. Message bytes pass through only as blobs: the inline
 * content of a commit (hashed here, off the event loop, when the caller left its id to us) and the
 * content read back for delivery in the same round trip as the entry's blob id.
 */
import type { BlobId, CompleteResult, FileAtCommit, Lease, LeaseRequest, QueueAdminRecord, QueueCounts, QueueEntry, QueueEntryState, QueuePause, QueueReceiptInput, QueueRecipientInput, RecipientOutcome } from '../../api.js';
import { normalizeDomain } from '../../common.js';
import { StoreError } from '../../errors.js';
import { checkReceipts, keptRecipients } from '../../receipts-common.js';
import { sha256 } from '../../common.js';
import { blobContent, type InlineContent, refBlob, unrefBlob } from './blobs.js';
import { type OpContext, stmt } from './context.js';
import { appendRow } from './messages.js';

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
  /** null: the content is inline and its id is computed here */
  blobId: BlobId | null;
  size: number;
  inline: InlineContent;
  meta: Record<string, unknown>;
  hold: boolean;
  dueAt: number;
  now: number;
  /** absent or empty: every recipient is queued, as before receipts existed */
  receipts?: QueueReceiptInput[];
  /** NewQueueMessage.file */
  file?: FileAtCommit[];
}

/** What the writer made of a commit; `created: false` means nothing was written. */
export interface CommitOutcome {
  blobId: BlobId;
  created: boolean;
  duplicates?: { addresses: string[]; of: string };
  filed?: string[];
}

/**
 * Files what it can of `file` (recipients still in `recipients`, not held, their domain not paused),
 * each under its own savepoint: a StoreError (over quota, mailbox gone) leaves that recipient queued.
 * The blob row exists already. Returns the addresses filed.
 */
function fileAtCommit(ctx: OpContext, c: CommitRow, blobId: BlobId, recipients: QueueRecipientInput[]): Set<string> {
  const filed = new Set<string>();
  if (c.hold || !c.file) return filed;
  const wanted = new Set(recipients.map((r) => r.address));
  const paused = stmt(ctx, "SELECT 1 FROM queue_pauses p WHERE substr(lower(?), -(length(p.domain) + 1)) = '@' || p.domain");
  // better-sqlite3 runs a transaction function called inside the open transaction as a savepoint
  const append = ctx.db.transaction((f: FileAtCommit) =>
    appendRow(
      ctx,
      f.mailboxId,
      {
        blobId,
        size: null,
        fresh: false,
        inline: null,
        prefix: f.prefix,
        flags: [],
        internalDate: c.now,
        idempotencyKey: `${c.id}:${f.recipient}`,
        deliveryDigest: f.deliveryDigest ?? null,
        structure: f.structure ?? null,
      },
      c.now,
    ),
  );
  for (const f of c.file) {
    if (!wanted.has(f.recipient) || filed.has(f.recipient) || paused.get(f.recipient)) continue;
    try {
      append(f);
      filed.add(f.recipient);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
    }
  }
  return filed;
}

/**
 * Inserts the receipts that are new (under the entry id about to be written) and returns the kept
 * recipients with the earlier entry of the first existing receipt. Same transaction as the entry.
 */
function recordReceipts(ctx: OpContext, c: CommitRow, receipts: QueueReceiptInput[]) {
  checkReceipts(receipts, c.recipients);
  const find = stmt(ctx, 'SELECT queue_id FROM queue_receipts WHERE key = ?');
  const existing = new Map<string, string>();
  for (const r of receipts) {
    const row = find.get(r.key) as { queue_id: string } | undefined;
    if (row) existing.set(r.key, row.queue_id);
  }
  const kept = keptRecipients(receipts, c.recipients, new Set(existing.keys()));
  if (kept.recipients.length > 0) {
    const ins = stmt(ctx, 'INSERT INTO queue_receipts (key, queue_id, created_at) VALUES (?, ?, ?)');
    for (const r of receipts) if (!existing.has(r.key)) ins.run(r.key, c.id, c.now);
  }
  const first = receipts.find((r) => existing.has(r.key));
  const duplicates = first && kept.left.length > 0 ? { addresses: kept.left, of: existing.get(first.key)! } : undefined;
  return { recipients: kept.recipients, duplicates };
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

/** Due active entries, oldest due first. */
const LEASE_ALL = "SELECT * FROM queue WHERE state = 'active' AND due_at <= ? ORDER BY due_at LIMIT ?";
/** The same, skipping entries whose every pending recipient is in a paused domain (only run while one is paused). */
const LEASE_UNPAUSED = `SELECT * FROM queue q WHERE q.state = 'active' AND q.due_at <= ?
  AND (EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id AND r.state = 'pending'
                 AND NOT EXISTS (SELECT 1 FROM queue_pauses p WHERE substr(lower(r.address), -(length(p.domain) + 1)) = '@' || p.domain))
       OR NOT EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id AND r.state = 'pending'))
  ORDER BY q.due_at LIMIT ?`;
/** Active entries with a pending recipient in the domain (suffix "@domain"), or with @sub = 1 in a subdomain (suffix ".domain"). */
const IN_DOMAIN = `SELECT q.id FROM queue q WHERE q.state = 'active' AND EXISTS (
    SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id AND r.state = 'pending'
       AND (substr(lower(r.address), -length(@at)) = @at OR (@sub = 1 AND substr(lower(r.address), -length(@dot)) = @dot)))
  ORDER BY q.received_at, q.id`;

function flushIn(ctx: OpContext, domain: string, subdomains: boolean, now: number): string[] {
  const ids = (stmt(ctx, IN_DOMAIN).all({ at: `@${domain}`, sub: subdomains ? 1 : 0, dot: `.${domain}` }) as { id: string }[]).map((r) => r.id);
  const upd = stmt(ctx, `UPDATE queue SET due_at = ${DUE_NOW} WHERE id = ?`);
  for (const id of ids) upd.run(now, now, id);
  return ids;
}

export function queueOps(ctx: OpContext) {
  return {
    /** The blob id (computed from the inline content when the request had none) and what receipts left out. */
    commit(c: CommitRow): CommitOutcome {
      let blobId = c.blobId;
      if (blobId === null) {
        if (c.inline === null) throw new StoreError('invalid', 'a commit without a blob id needs inline content');
        blobId = sha256(Buffer.from(c.inline.buffer, c.inline.byteOffset, c.inline.byteLength));
      }
      const r = c.receipts && c.receipts.length > 0 ? recordReceipts(ctx, c, c.receipts) : null;
      const recipients = r ? r.recipients : c.recipients;
      const duplicates = r?.duplicates ? { duplicates: r.duplicates } : {};
      if (r && r.recipients.length === 0) return { blobId, created: false, ...duplicates };
      refBlob(ctx, blobId, c.size, c.now, c.inline);
      const filed = fileAtCommit(ctx, c, blobId, recipients);
      const queued = filed.size === 0 ? recipients : recipients.filter((x) => !filed.has(x.address));
      const filedList = filed.size > 0 ? { filed: [...filed] } : {};
      if (queued.length === 0) {
        // every recipient is in its mailbox: no queue entry holds the bytes
        unrefBlob(ctx, blobId);
        return { blobId, created: true, ...duplicates, ...filedList };
      }
      stmt(ctx, 'INSERT INTO queue (id, sender, meta, blob_id, size, received_at, state, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        c.id,
        c.sender,
        JSON.stringify(c.meta),
        blobId,
        c.size,
        c.now,
        c.hold ? 'held' : 'active',
        c.dueAt,
      );
      const ins = stmt(ctx, "INSERT INTO queue_recipients (queue_id, address, orcpt, notify, state) VALUES (?, ?, ?, ?, 'pending')");
      for (const x of queued) ins.run(c.id, x.address, x.orcpt ?? null, x.notify ? JSON.stringify(x.notify) : null);
      return { blobId, created: true, ...duplicates, ...filedList };
    },
    lease(req: LeaseRequest): Lease[] {
      const paused = stmt(ctx, 'SELECT 1 FROM queue_pauses LIMIT 1').get() !== undefined;
      const rows = stmt(ctx, paused ? LEASE_UNPAUSED : LEASE_ALL).all(req.now, req.limit) as EntryRow[];
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
    flushDomain(domain: string, now: number, options: { subdomains?: boolean } = {}): string[] {
      return flushIn(ctx, normalizeDomain(domain), options.subdomains === true, now);
    },
    pause(domain: string, by: string, now: number): boolean {
      const d = normalizeDomain(domain);
      return stmt(ctx, 'INSERT INTO queue_pauses (domain, paused_by, since) VALUES (?, ?, ?) ON CONFLICT (domain) DO NOTHING').run(d, by, now).changes === 1;
    },
    resume(domain: string, now: number): string[] {
      const d = normalizeDomain(domain);
      if (stmt(ctx, 'DELETE FROM queue_pauses WHERE domain = ?').run(d).changes === 0) throw new StoreError('not_found', `${d} is not paused`);
      return flushIn(ctx, d, false, now);
    },
    pauses(): QueuePause[] {
      return stmt(ctx, 'SELECT domain, paused_by AS "by", since FROM queue_pauses ORDER BY domain').all() as QueuePause[];
    },
    recordAdmin(r: QueueAdminRecord): void {
      stmt(ctx, 'INSERT INTO queue_admin_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)').run(r.at, r.actor, r.action, r.target, r.detail);
    },
    adminLog(filter: { target?: string; limit?: number } = {}): QueueAdminRecord[] {
      return stmt(
        ctx,
        `SELECT at, actor, action, target, detail FROM (
           SELECT * FROM queue_admin_log WHERE @target IS NULL OR target = @target ORDER BY id DESC LIMIT @limit
         ) ORDER BY id`,
      ).all({ target: filter.target ?? null, limit: filter.limit ?? -1 }) as QueueAdminRecord[];
    },
    pruneReceipts(before: number): number {
      return stmt(ctx, 'DELETE FROM queue_receipts WHERE created_at < ?').run(before).changes;
    },
    blobOf(id: string): BlobId {
      return entryRow(ctx, id).blob_id;
    },
    /** The entry's blob id and bytes in one round trip (blobContent: inline and checked, or 'file'). */
    contentOf(id: string): { blobId: BlobId; content: Uint8Array | 'file' } {
      const blobId = entryRow(ctx, id).blob_id;
      const content = blobContent(ctx, blobId);
      if (content === null) throw new StoreError('not_found', `blob ${blobId} not found`);
      return { blobId, content };
    },
  };
}
