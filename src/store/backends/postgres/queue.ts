/*
 * The mail queue in queue_entries / queue_recipients: commit, leases with fencing tokens, outcomes.
 * Owns lease semantics: lease() hands rows out with FOR UPDATE SKIP LOCKED, and every later write by a
 * holder checks its token in the same transaction. Never deletes an entry while a recipient is pending,
 * except on an explicit remove(). Stale tokens are `stale_lease`; missing entries `not_found`.
 */
import type {
  BlobId,
  CompleteResult,
  Lease,
  LeaseRequest,
  NewQueueMessage,
  QueueAdminRecord,
  QueueCounts,
  QueueEntry,
  QueueEntryState,
  QueueCommitResult,
  QueuePause,
  QueueRecipient,
  QueueRecipientInput,
  QueueStore,
  RecipientOutcome,
} from '../../api.js';
import { newQueueId, normalizeDomain, sha256, verifyBlob } from '../../common.js';
import { StoreError } from '../../errors.js';
import { checkReceipts, keptRecipients } from '../../receipts-common.js';
import { upsertBlobSql } from './blobs.js';
import type { Db, Sql } from './db.js';

interface EntryRow {
  id: string;
  sender: string;
  meta: Record<string, unknown>;
  blob_id: string;
  size: number;
  received_at: number;
  state: QueueEntryState;
  due_at: number;
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  lease_token: number;
  recipients: QueueRecipient[];
}

/**
 * An entry with its recipients as one row (recipients as a JSON array in id order), so that every read
 * is a single statement and therefore a consistent snapshot. Expects the entry aliased as `q`.
 */
const ENTRY_COLUMNS = `q.id, q.sender, q.meta, q.blob_id, q.size, q.received_at, q.state, q.due_at, q.attempts,
  q.lease_owner, q.lease_expires_at, q.lease_token,
  (SELECT COALESCE(json_agg(json_build_object('id', r.id, 'address', r.address, 'orcpt', r.orcpt, 'notify', r.notify,
            'state', r.state, 'attempts', r.attempts, 'lastError', r.last_error) ORDER BY r.id), '[]')
     FROM queue_recipients r WHERE r.entry_id = q.id) AS recipients`;

/** For a held or requeued entry: due now, unless someone holds a live lease (then when it runs out). */
const DUE_NOW = 'CASE WHEN lease_expires_at > $2 THEN lease_expires_at ELSE $2 END';

function toEntry(e: EntryRow): QueueEntry {
  return {
    id: e.id,
    sender: e.sender,
    meta: e.meta,
    blobId: e.blob_id,
    size: e.size,
    receivedAt: e.received_at,
    state: e.state,
    dueAt: e.due_at,
    attempts: e.attempts,
    leaseOwner: e.lease_owner,
    leaseExpiresAt: e.lease_expires_at,
    recipients: e.recipients,
  };
}

/** Locks the entry and checks the fencing token; a released or re-leased entry is stale. */
async function checkToken(sql: Sql, id: string, token: number): Promise<void> {
  const row = (
    await sql.query<{ lease_token: number; lease_expires_at: number | null }>(
      'SELECT lease_token, lease_expires_at FROM queue_entries WHERE id = $1 FOR UPDATE',
      [id],
    )
  ).rows[0];
  if (!row || row.lease_token !== token || row.lease_expires_at === null) {
    throw new StoreError('stale_lease', `queue entry ${id}: lease token ${token} is no longer valid`);
  }
}

/**
 * Makes active entries with a pending recipient in the domain ($2 = "@domain", or with $3 in a subdomain:
 * $4 = ".domain") due now ($1), keeping a live lease's expiry; returns their ids, oldest first.
 */
async function flushIn(sql: Sql, domain: string, subdomains: boolean, now: number): Promise<string[]> {
  const rows = (
    await sql.query<{ id: string; received_at: number }>(
      `UPDATE queue_entries q SET due_at = CASE WHEN q.lease_expires_at > $1 THEN q.lease_expires_at ELSE $1 END
        WHERE q.state = 'active' AND EXISTS (
          SELECT 1 FROM queue_recipients r WHERE r.entry_id = q.id AND r.state = 'pending'
             AND (right(lower(r.address), length($2)) = $2 OR ($3 AND right(lower(r.address), length($4)) = $4)))
       RETURNING q.id, q.received_at`,
      [now, `@${domain}`, subdomains, `.${domain}`],
    )
  ).rows;
  rows.sort((a, b) => a.received_at - b.received_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return rows.map((r) => r.id);
}

/** When the entry is next due: now for recipients nobody tried, else the earliest retry. */
function nextDue(outcomes: RecipientOutcome[], untried: number, now: number): number {
  let due = untried > 0 ? now : Infinity;
  for (const o of outcomes) if (o.outcome === 'deferred') due = Math.min(due, o.retryAt);
  return Number.isFinite(due) ? due : now;
}

/** The blob, the entry and its recipients in one statement ($1..$10, see entryParams). */
const INSERT_ENTRY = `WITH blob AS (${upsertBlobSql('$1', '$2', '$3', '$4')}),
 entry AS (
   INSERT INTO queue_entries (id, sender, meta, blob_id, size, received_at, state, due_at)
   SELECT $5, $6, $7::jsonb, blob.id, $2, $4, $8, $9 FROM blob
   RETURNING id
 )
 INSERT INTO queue_recipients (entry_id, address, orcpt, notify)
 SELECT entry.id, r.address, r.orcpt, r.notify
   FROM entry,
        ROWS FROM (jsonb_to_recordset($10::jsonb) AS (address text, orcpt text, notify text[]))
          WITH ORDINALITY AS r (address, orcpt, notify, ord)
  ORDER BY r.ord`;

function entryParams(message: NewQueueMessage, recipients: readonly QueueRecipientInput[], id: string, blobId: BlobId, now: number): unknown[] {
  const rows = recipients.map((r) => ({ address: r.address, orcpt: r.orcpt ?? null, notify: r.notify ?? null }));
  return [
    blobId,
    message.content.length,
    message.content,
    now,
    id,
    message.sender,
    JSON.stringify(message.meta ?? {}),
    message.hold ? 'held' : 'active',
    message.dueAt ?? now,
    JSON.stringify(rows),
  ];
}

export class PgQueue implements QueueStore {
  /** recipients are never filed by the commit: the queue spreads their deliveries over the cluster's nodes */
  readonly filesAtCommit = false;

  constructor(private readonly db: Db) {}

  async commit(message: NewQueueMessage, now: number): Promise<QueueCommitResult> {
    if (message.recipients.length === 0) throw new StoreError('invalid', 'a queue entry needs at least one recipient');
    const id = newQueueId(now);
    const blobId = sha256(message.content);
    const receipts = message.receipts ?? [];
    if (receipts.length === 0) {
      // One statement, so one round trip and atomic without BEGIN/COMMIT: this is the path before "250".
      await this.db.query('queue.commit', INSERT_ENTRY, entryParams(message, message.recipients, id, blobId, now));
      return { id, blobId, created: true };
    }
    checkReceipts(receipts, message.recipients);
    return this.db.tx('queue.commit', async (sql) => {
      // Sorted, so two commits naming the same keys lock them in the same order. A concurrent identical
      // commit waits here for the first one's end: the unique key decides which of the two queues it.
      const keys = receipts.map((r) => r.key).sort();
      const added = await sql.query<{ key: string }>(
        `INSERT INTO queue_receipts (key, queue_id, created_at) SELECT k, $2, $3 FROM unnest($1::text[]) AS k ORDER BY k
         ON CONFLICT (key) DO NOTHING RETURNING key`,
        [keys, id, now],
      );
      const fresh = new Set(added.rows.map((r) => r.key));
      const old = keys.filter((k) => !fresh.has(k));
      const earlier = new Map<string, string>();
      if (old.length > 0) {
        const rows = await sql.query<{ key: string; queue_id: string }>('SELECT key, queue_id FROM queue_receipts WHERE key = ANY($1::text[])', [old]);
        for (const r of rows.rows) earlier.set(r.key, r.queue_id);
      }
      const kept = keptRecipients(receipts, message.recipients, new Set(old));
      const first = receipts.find((r) => earlier.has(r.key));
      // (a receipt pruned between the two statements leaves no id to name: ours then stands in)
      const of = first ? earlier.get(first.key)! : id;
      const duplicates = kept.left.length > 0 ? { duplicates: { addresses: kept.left, of } } : {};
      if (kept.recipients.length === 0) return { id: of, blobId, created: false, ...duplicates };
      await sql.query(INSERT_ENTRY, entryParams(message, kept.recipients, id, blobId, now));
      return { id, blobId, created: true, ...duplicates };
    });
  }

  async lease(request: LeaseRequest): Promise<Lease[]> {
    if (request.limit <= 0) return [];
    const expiresAt = request.now + request.leaseMs;
    // One statement, atomic without a transaction. due_at moves to the lease's end, so an expired
    // lease makes the entry due again by itself.
    const rows = await this.db.query<EntryRow & { was_due: number }>(
      'queue.lease',
      `WITH picked AS (
         SELECT id, due_at FROM queue_entries e
          WHERE state = 'active' AND due_at <= $1
            -- paused destinations (queue pause): skip entries whose every pending recipient is in one
            AND (NOT EXISTS (SELECT 1 FROM queue_pauses)
                 OR EXISTS (SELECT 1 FROM queue_recipients r WHERE r.entry_id = e.id AND r.state = 'pending'
                              AND NOT EXISTS (SELECT 1 FROM queue_pauses p WHERE right(lower(r.address), length(p.domain) + 1) = '@' || p.domain))
                 OR NOT EXISTS (SELECT 1 FROM queue_recipients r WHERE r.entry_id = e.id AND r.state = 'pending'))
          ORDER BY due_at, id
          LIMIT $2
          FOR UPDATE SKIP LOCKED
       )
       UPDATE queue_entries q
          SET lease_token = q.lease_token + 1, lease_owner = $3, lease_expires_at = $4, due_at = $4,
              attempts = q.attempts + 1
         FROM picked
        WHERE q.id = picked.id
       RETURNING ${ENTRY_COLUMNS}, picked.due_at AS was_due`,
      [request.now, request.limit, request.owner, expiresAt],
    );
    rows.sort((a, b) => a.was_due - b.was_due || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return rows.map((r) => ({ entry: toEntry(r), token: r.lease_token, expiresAt }));
  }

  async renew(id: string, token: number, leaseMs: number, now: number): Promise<number> {
    const rows = await this.db.query<{ lease_expires_at: number }>(
      'queue.renew',
      `UPDATE queue_entries SET lease_expires_at = $3, due_at = $3
        WHERE id = $1 AND lease_token = $2 AND lease_expires_at IS NOT NULL
       RETURNING lease_expires_at`,
      [id, token, now + leaseMs],
    );
    const row = rows[0];
    if (!row) throw new StoreError('stale_lease', `queue entry ${id}: lease token ${token} is no longer valid`);
    return row.lease_expires_at;
  }

  async complete(id: string, token: number, outcomes: RecipientOutcome[], now: number): Promise<CompleteResult> {
    return this.db.tx('queue.complete', async (sql) => {
      // Bookkeeping after a delivery: losing it in a server crash only repeats the attempt (keyed mailbox
      // insertion and XQUEUEID receipts keep that from making a copy), and the WAL is ordered, so the next
      // synchronous commit makes it durable anyway. Not waiting for the flush (and the standby) here
      // leaves the fsyncs to the commits behind a 250, as on the embedded backend (RELAXED_OPS).
      await sql.query('SET LOCAL synchronous_commit = off');
      await checkToken(sql, id, token);
      await recordOutcomes(sql, id, outcomes);
      const named = outcomes.map((o) => o.recipientId);
      const count = (
        await sql.query<{ pending: number; untried: number }>(
          `SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
                  count(*) FILTER (WHERE state = 'pending' AND NOT (id = ANY($2::bigint[]))) AS untried
             FROM queue_recipients WHERE entry_id = $1`,
          [id, named],
        )
      ).rows[0] ?? { pending: 0, untried: 0 };
      if (count.pending === 0) {
        await removeEntry(sql, id);
        return { pending: 0, removed: true };
      }
      await sql.query('UPDATE queue_entries SET lease_owner = NULL, lease_expires_at = NULL, due_at = $2 WHERE id = $1', [
        id,
        nextDue(outcomes, count.untried, now),
      ]);
      return { pending: count.pending, removed: false };
    });
  }

  async hold(id: string): Promise<void> {
    await this.updateOne('queue.hold', id, "UPDATE queue_entries SET state = 'held' WHERE id = $1", []);
  }

  async release(id: string, now: number): Promise<void> {
    await this.updateOne('queue.release', id, `UPDATE queue_entries SET state = 'active', due_at = ${DUE_NOW} WHERE id = $1`, [now]);
  }

  async requeue(id: string, now: number): Promise<void> {
    await this.updateOne('queue.requeue', id, `UPDATE queue_entries SET due_at = ${DUE_NOW} WHERE id = $1`, [now]);
  }

  async remove(id: string): Promise<void> {
    await this.db.tx('queue.remove', async (sql) => {
      if (!(await removeEntry(sql, id))) throw new StoreError('not_found', `queue entry ${id} not found`);
    });
  }

  async get(id: string): Promise<QueueEntry | null> {
    const rows = await this.db.query<EntryRow>('queue.get', `SELECT ${ENTRY_COLUMNS} FROM queue_entries q WHERE q.id = $1`, [id]);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  async list(filter: { state?: QueueEntryState; limit?: number } = {}): Promise<QueueEntry[]> {
    const rows = await this.db.query<EntryRow>(
      'queue.list',
      `SELECT ${ENTRY_COLUMNS} FROM queue_entries q
        WHERE ($1::text IS NULL OR q.state = $1)
        ORDER BY q.received_at, q.id
        LIMIT $2`,
      [filter.state ?? null, filter.limit ?? null],
    );
    return rows.map(toEntry);
  }

  async counts(now: number): Promise<QueueCounts> {
    const rows = await this.db.query<QueueCounts>(
      'queue.counts',
      `SELECT count(*) FILTER (WHERE state = 'active') AS active,
              count(*) FILTER (WHERE state = 'held') AS held,
              count(*) FILTER (WHERE lease_expires_at > $1) AS leased,
              count(*) FILTER (WHERE state = 'active' AND due_at <= $1) AS due
         FROM queue_entries`,
      [now],
    );
    return rows[0] ?? { active: 0, held: 0, leased: 0, due: 0 };
  }

  async content(id: string): Promise<Buffer> {
    const rows = await this.db.query<{ id: string; content: Buffer }>(
      'queue.content',
      'SELECT b.id, b.content FROM queue_entries q JOIN blobs b ON b.id = q.blob_id WHERE q.id = $1',
      [id],
    );
    const row = rows[0];
    if (!row) throw new StoreError('not_found', `queue entry ${id} not found`);
    return verifyBlob(row.id, row.content);
  }

  async flushDomain(domain: string, now: number, options: { subdomains?: boolean } = {}): Promise<string[]> {
    const d = normalizeDomain(domain);
    return this.db.tx('queue.flushDomain', (sql) => flushIn(sql, d, options.subdomains === true, now));
  }

  async pause(domain: string, by: string, now: number): Promise<boolean> {
    const rows = await this.db.query(
      'queue.pause',
      'INSERT INTO queue_pauses (domain, paused_by, since) VALUES ($1, $2, $3) ON CONFLICT (domain) DO NOTHING RETURNING 1',
      [normalizeDomain(domain), by, now],
    );
    return rows.length === 1;
  }

  async resume(domain: string, now: number): Promise<string[]> {
    const d = normalizeDomain(domain);
    return this.db.tx('queue.resume', async (sql) => {
      const gone = (await sql.query('DELETE FROM queue_pauses WHERE domain = $1 RETURNING 1', [d])).rows;
      if (gone.length === 0) throw new StoreError('not_found', `${d} is not paused`);
      return flushIn(sql, d, false, now);
    });
  }

  async pauses(): Promise<QueuePause[]> {
    return this.db.query<QueuePause>('queue.pauses', 'SELECT domain, paused_by AS "by", since FROM queue_pauses ORDER BY domain', []);
  }

  async recordAdmin(r: QueueAdminRecord): Promise<void> {
    await this.db.query('queue.recordAdmin', 'INSERT INTO queue_admin_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)', [
      r.at,
      r.actor,
      r.action,
      r.target,
      r.detail,
    ]);
  }

  async adminLog(filter: { target?: string; limit?: number } = {}): Promise<QueueAdminRecord[]> {
    return this.db.query<QueueAdminRecord>(
      'queue.adminLog',
      `SELECT at, actor, action, target, detail FROM (
         SELECT * FROM queue_admin_log WHERE $1::text IS NULL OR target = $1 ORDER BY id DESC LIMIT $2
       ) l ORDER BY id`,
      [filter.target ?? null, filter.limit ?? null],
    );
  }

  async pruneReceipts(before: number): Promise<number> {
    const rows = await this.db.query('queue.pruneReceipts', 'DELETE FROM queue_receipts WHERE created_at < $1 RETURNING 1', [before]);
    return rows.length;
  }

  private async updateOne(what: string, id: string, text: string, params: unknown[]): Promise<void> {
    const rows = await this.db.query(what, `${text} RETURNING id`, [id, ...params]);
    if (rows.length === 0) throw new StoreError('not_found', `queue entry ${id} not found`);
  }
}

/** done/failed are final; deferred stays pending and counts an attempt. Unknown ids are ignored. */
async function recordOutcomes(sql: Sql, id: string, outcomes: RecipientOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const rows = outcomes.map((o) => ({ id: o.recipientId, outcome: o.outcome, reason: o.reason ?? null }));
  await sql.query(
    `UPDATE queue_recipients r
        SET state = CASE o.outcome WHEN 'deferred' THEN 'pending' ELSE o.outcome END,
            last_error = o.reason,
            attempts = r.attempts + CASE o.outcome WHEN 'deferred' THEN 1 ELSE 0 END
       FROM jsonb_to_recordset($2::jsonb) AS o (id bigint, outcome text, reason text)
      WHERE r.id = o.id AND r.entry_id = $1`,
    [id, JSON.stringify(rows)],
  );
}

/** Deletes the entry (recipients cascade) and drops its blob reference, in one statement. */
async function removeEntry(sql: Sql, id: string): Promise<boolean> {
  const rows = (
    await sql.query(
      `WITH gone AS (DELETE FROM queue_entries WHERE id = $1 RETURNING blob_id)
       UPDATE blobs SET refcount = GREATEST(blobs.refcount - 1, 0) FROM gone WHERE blobs.id = gone.blob_id RETURNING 1`,
      [id],
    )
  ).rows;
  return rows.length > 0;
}
