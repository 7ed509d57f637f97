/*
 * The schema of the postgres backend as ordered migrations; version N is MIGRATIONS[N - 1].
 * Owns schema_migrations. Never edit a released migration: append a new one.
 * All pending migrations run in one transaction under an advisory lock, so nodes starting together
 * apply each exactly once and a failure leaves the schema as it was (the error is a StoreError).
 */
import type { Db } from './db.js';

/** Arbitrary but fixed: 'cartero' in ASCII, shared by every node of a cluster. */
const MIGRATION_LOCK_KEY = 0x63617274_6572;

export const MIGRATIONS: readonly string[] = [
  // 1: directory, blobs, queue, mailboxes, messages, change feed. Names and ids use the "C" collation
  // so that sorting and uniqueness are bytewise, as in the embedded backend, whatever the server locale.
  `
  CREATE TABLE domains (
    name        TEXT COLLATE "C" PRIMARY KEY,
    created_at  BIGINT NOT NULL
  );
  CREATE TABLE accounts (
    id                 SERIAL PRIMARY KEY,
    address            TEXT COLLATE "C" NOT NULL UNIQUE,
    domain             TEXT COLLATE "C" NOT NULL REFERENCES domains (name),
    password_hash      TEXT,
    quota_bytes        BIGINT,
    -- highest UIDVALIDITY handed out: a re-created mailbox must never reuse one
    last_uid_validity  BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
  );
  CREATE INDEX accounts_domain ON accounts (domain);
  CREATE TABLE aliases (
    source      TEXT COLLATE "C" PRIMARY KEY,
    domain      TEXT COLLATE "C" NOT NULL REFERENCES domains (name),
    targets     TEXT[] NOT NULL,
    created_at  BIGINT NOT NULL
  );
  CREATE INDEX aliases_domain ON aliases (domain);

  CREATE TABLE blobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    content     BYTEA NOT NULL,
    refcount    INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
  );
  CREATE INDEX blobs_unreferenced ON blobs (created_at) WHERE refcount = 0;

  CREATE TABLE queue_entries (
    id                TEXT COLLATE "C" PRIMARY KEY,
    sender            TEXT NOT NULL,
    meta              JSONB NOT NULL,
    blob_id           TEXT COLLATE "C" NOT NULL REFERENCES blobs (id),
    size              BIGINT NOT NULL,
    received_at       BIGINT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('active', 'held')),
    -- for a leased entry, when the lease runs out: an expired lease is simply due again
    due_at            BIGINT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    lease_token       BIGINT NOT NULL DEFAULT 0
  );
  CREATE INDEX queue_entries_due ON queue_entries (due_at) WHERE state = 'active';
  CREATE INDEX queue_entries_received ON queue_entries (received_at, id);
  CREATE INDEX queue_entries_blob ON queue_entries (blob_id);
  CREATE TABLE queue_recipients (
    id          BIGSERIAL PRIMARY KEY,
    entry_id    TEXT COLLATE "C" NOT NULL REFERENCES queue_entries (id) ON DELETE CASCADE,
    address     TEXT NOT NULL,
    orcpt       TEXT,
    notify      TEXT[],
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
  );
  CREATE INDEX queue_recipients_entry ON queue_recipients (entry_id, id);

  CREATE TABLE mailboxes (
    id              SERIAL PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            TEXT COLLATE "C" NOT NULL,
    special_use     TEXT,
    subscribed      BOOLEAN NOT NULL,
    uid_validity    BIGINT NOT NULL,
    uid_next        BIGINT NOT NULL DEFAULT 1,
    highest_modseq  BIGINT NOT NULL DEFAULT 1,
    -- counters kept exact by every message write, all of which hold this row's lock
    messages        INTEGER NOT NULL DEFAULT 0,
    unseen          INTEGER NOT NULL DEFAULT 0,
    size            BIGINT NOT NULL DEFAULT 0,
    -- deferrable so that a rename moving a whole subtree is checked once, at the end of the statement
    CONSTRAINT mailboxes_account_name UNIQUE (account_id, name) DEFERRABLE INITIALLY IMMEDIATE
  );

  CREATE TABLE messages (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid             BIGINT NOT NULL,
    modseq          BIGINT NOT NULL,
    -- the modseq of the append (or copy): tells 'append' from 'flags' in the change feed
    created_modseq  BIGINT NOT NULL,
    flags           TEXT[] NOT NULL,
    internal_date   BIGINT NOT NULL,
    size            BIGINT NOT NULL,
    blob_id         TEXT COLLATE "C" NOT NULL REFERENCES blobs (id),
    PRIMARY KEY (mailbox_id, uid)
  );
  CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
  CREATE INDEX messages_blob ON messages (blob_id);

  CREATE TABLE expunges (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid         BIGINT NOT NULL,
    modseq      BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  );
  CREATE INDEX expunges_modseq ON expunges (mailbox_id, modseq);

  -- outlives the message on purpose: a delivery retried after the user expunged must stay a duplicate
  CREATE TABLE delivery_keys (
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    mailbox_id    INTEGER NOT NULL,
    uid           BIGINT NOT NULL,
    modseq        BIGINT NOT NULL,
    uid_validity  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
  );
  `,
  // 2: the serialised MIME structure of each message (src/mime), computed once at append; TOASTed, so
  // rows read without it (list, flags) do not pay for it
  `
  ALTER TABLE messages ADD COLUMN structure TEXT;
  `,
  // 3: cluster membership (one row per node name, replaced when a node registers again) and the
  // singleton jobs: the advisory lock key of each and who took it last (pg_locks says whether it still holds it)
  `
  CREATE TABLE cluster_nodes (
    name            TEXT COLLATE "C" PRIMARY KEY,
    incarnation     TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    roles           TEXT[] NOT NULL,
    version         TEXT NOT NULL,
    heartbeat_ms    INTEGER NOT NULL,
    started_at      BIGINT NOT NULL,
    last_heartbeat  BIGINT NOT NULL
  );
  CREATE TABLE cluster_jobs (
    name         TEXT COLLATE "C" PRIMARY KEY,
    lock_key     INTEGER NOT NULL UNIQUE CHECK (lock_key >= 0),
    holder_node  TEXT,
    holder_pid   INTEGER,
    acquired_at  BIGINT
  );
  `,
  // 4: paused destination domains (lease() skips their entries) and the queue's admin log
  `
  CREATE TABLE queue_pauses (
    domain     TEXT COLLATE "C" PRIMARY KEY,
    paused_by  TEXT NOT NULL,
    since      BIGINT NOT NULL
  );
  CREATE TABLE queue_admin_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT COLLATE "C" NOT NULL,
    detail  TEXT
  );
  CREATE INDEX queue_admin_log_target ON queue_admin_log (target, id);
  `,
  // 5 (queue receipts): one row per recipient a client handed us under its queue id (XQUEUEID), so its
  // resend after a lost 250 is recognised at commit; pruned after the senders' queue lifetime
  `
  CREATE TABLE queue_receipts (
    key         TEXT COLLATE "C" PRIMARY KEY,
    queue_id    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
  );
  CREATE INDEX queue_receipts_created ON queue_receipts (created_at);
  `,
  // 6: lookup maps kept in the store (`{ store: NAME }` sources of the *_maps keys) and their generations
  `
  CREATE TABLE lookup_maps (
    map         TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (map, key)
  );
  CREATE TABLE lookup_map_generations (
    name        TEXT COLLATE "C" PRIMARY KEY,
    generation  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
  );
  `,
  // 7 (IMAP SELECT/FETCH): covering indexes, so a session's view of a large mailbox is an index-only
  // scan, and SELECT's flag list one seek per distinct flag set
  `
  CREATE INDEX messages_view ON messages (mailbox_id, uid) INCLUDE (modseq, internal_date, size, flags);
  CREATE INDEX messages_flags ON messages (mailbox_id, flags);
  `,
  // 8 (destination slots): cluster-wide per-destination concurrency (smtp_client.destination_concurrency).
  // A delivery holds one row (destination, slot < limit) under a lease; a dead node's rows expire with it.
  // The embedded backend (one node) keeps the limit in process.
  `
  CREATE TABLE destination_slots (
    destination  TEXT COLLATE "C" NOT NULL,
    slot         INTEGER NOT NULL,
    owner        TEXT NOT NULL,
    holder       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (destination, slot)
  );
  `,
  // 9 (inline blob checksums): the embedded backend's CRC-32 column; nothing here (PostgreSQL keeps
  // blob bytes its own way), listed so both backends keep one version numbering
  'SELECT 1',
  // 10 (each message's bytes written once): a delivered message is its trace headers (prefix) over the
  // queued blob, shared by every mailbox that receives it. (The embedded backend's blob_refs table of
  // this version has no counterpart: an update of blobs.refcount leaves PostgreSQL's out-of-line
  // content where it is.)
  'ALTER TABLE messages ADD COLUMN prefix bytea',
  // 11 (exact-duplicate suppression): see the embedded backend's migration 11
  `
  CREATE TABLE delivery_digests (
    account_id  BIGINT NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, digest)
  );
  CREATE INDEX delivery_digests_age ON delivery_digests (created_at);
  `,
];

export async function migrate(db: Db): Promise<number[]> {
  return db.tx(
    'migrate',
    async (sql) => {
      // taken before CREATE TABLE IF NOT EXISTS, which itself races between sessions
      await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await sql.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const rows = (await sql.query<{ version: number }>('SELECT version FROM schema_migrations')).rows;
      const done = new Set(rows.map((r) => r.version));
      const applied: number[] = [];
      for (const [index, text] of MIGRATIONS.entries()) {
        const version = index + 1;
        if (done.has(version)) continue;
        await sql.query(text);
        await sql.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
        applied.push(version);
      }
      return applied;
    },
  );
}
