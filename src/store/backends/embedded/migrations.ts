/*
 * Versioned SQLite schema of the embedded backend. Versions only ever get appended; a released
 * migration is never edited. Runs inside the worker, in one transaction per version.
 */
import type { Database } from 'better-sqlite3';

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE domains (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
  CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL REFERENCES domains(name),
    password_hash TEXT,
    quota_bytes INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX accounts_domain ON accounts(domain);
  CREATE TABLE aliases (
    source TEXT PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name),
    targets TEXT NOT NULL
  );
  CREATE INDEX aliases_domain ON aliases(domain);
  CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content BLOB,
    refcount INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX blobs_unreferenced ON blobs(created_at) WHERE refcount = 0;
  CREATE TABLE queue (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    meta TEXT NOT NULL,
    blob_id TEXT NOT NULL REFERENCES blobs(id),
    size INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER
  );
  CREATE INDEX queue_due ON queue(state, due_at);
  CREATE TABLE queue_recipients (
    id INTEGER PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    orcpt TEXT,
    notify TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  );
  CREATE INDEX queue_recipients_queue ON queue_recipients(queue_id);
  CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    special_use TEXT,
    subscribed INTEGER NOT NULL DEFAULT 0,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    messages INTEGER NOT NULL DEFAULT 0,
    unseen INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
  );
  CREATE TABLE messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    blob_id TEXT NOT NULL REFERENCES blobs(id),
    size INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    flags TEXT NOT NULL,
    seen INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    created_modseq INTEGER NOT NULL,
    idempotency_key TEXT,
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX messages_idempotency ON messages(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
  CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
  CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  `,
  // 2: the serialised MIME structure of each message (src/mime), computed once at append
  `
  ALTER TABLE messages ADD COLUMN structure TEXT;
  `,
  // 3: the node registry and singleton job holders (the one node of an embedded store), as on PostgreSQL
  `
  CREATE TABLE cluster_nodes (
    name TEXT PRIMARY KEY,
    incarnation TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    roles TEXT NOT NULL,
    version TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL
  );
  CREATE TABLE cluster_jobs (
    name TEXT PRIMARY KEY,
    holder_node TEXT,
    acquired_at INTEGER
  );
  `,
  // 4: paused destination domains (lease() skips their entries) and the queue's admin log
  `
  CREATE TABLE queue_pauses (
    domain TEXT PRIMARY KEY,
    paused_by TEXT NOT NULL,
    since INTEGER NOT NULL
  );
  CREATE TABLE queue_admin_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX queue_admin_log_target ON queue_admin_log(target, id);
  `,
  // 5 (queue receipts): one row per recipient a client handed us under its queue id (XQUEUEID), so its
  // resend after a lost 250 is recognised at commit; pruned after the senders' queue lifetime
  `
  CREATE TABLE queue_receipts (
    key TEXT PRIMARY KEY,
    queue_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX queue_receipts_created ON queue_receipts(created_at);
  `,
  // 6: lookup maps kept in the store (`{ store: NAME }` sources of the *_maps keys) and their generations
  `
  CREATE TABLE lookup_maps (
    map TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (map, key)
  );
  CREATE TABLE lookup_map_generations (
    name TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // 7 (IMAP SELECT/FETCH): covering indexes, so a session's view of a large mailbox is read without the
  // rows' MIME structures, and SELECT's flag list with one seek per distinct flag set
  `
  CREATE INDEX messages_view ON messages(mailbox_id, uid, modseq, internal_date, size, flags);
  CREATE INDEX messages_flags ON messages(mailbox_id, flags);
  `,
  // 8 (destination slots): cluster-wide per-destination concurrency (smtp_client.destination_concurrency).
  // A delivery holds one row (destination, slot < limit) under a lease; a dead node's rows expire with it.
  // Used by the postgres backend only; created here too so both backends keep one version numbering.
  `
  CREATE TABLE destination_slots (
    destination  TEXT NOT NULL,
    slot         INTEGER NOT NULL,
    owner        TEXT NOT NULL,
    holder       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (destination, slot)
  );
  `,
  // 9 (inline blob checksums): the CRC-32 of a row's inline content, checked on every read at a third of
  // what the SHA-256 of the id costs; rows written before have NULL and are checked against the id
  `
  ALTER TABLE blobs ADD COLUMN crc32 INTEGER;
  `,
  // 10 (each message's bytes written once): a delivered message is its trace headers (messages.prefix)
  // over the queued blob, which every mailbox receiving it shares instead of storing its own copy. And
  // SQLite rewrites a whole row, overflow pages included, when an update changes its size, as a
  // reference count going 1 -> 2 -> 1 does: counts and ages now live in blob_refs, so a new reference
  // does not write a message's bytes again. blobs.refcount and blobs.created_at stay (dropping a column
  // rewrites every stored message) but are no longer read or maintained: new rows carry 0 and their
  // creation time.
  `
  ALTER TABLE messages ADD COLUMN prefix BLOB;
  CREATE TABLE blob_refs (
    id TEXT PRIMARY KEY REFERENCES blobs(id),
    refcount INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO blob_refs (id, refcount, created_at) SELECT id, refcount, created_at FROM blobs;
  DROP INDEX blobs_unreferenced;
  CREATE INDEX blob_refs_unreferenced ON blob_refs(created_at) WHERE refcount = 0;
  `,
  // 11 (exact-duplicate suppression, NewMessage.deliveryDigest): the digest of each message delivered to
  // an account (Message-ID and body), kept for delivery.duplicate_suppression_window, so a second copy
  // of the same message (a client resending through another node after its 250 was lost) is not filed.
  `
  CREATE TABLE delivery_digests (
    account_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX delivery_digests_age ON delivery_digests(created_at);
  `,
];

export function migrate(db: Database): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  const done: number[] = [];
  MIGRATIONS.forEach((sql, i) => {
    const version = i + 1;
    if (applied.has(version)) return;
    db.exec(sql);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now());
    done.push(version);
  });
  return done;
}
