/*
 * The one storage interface of Cartero. Every protocol server, the queue manager and the CLI reach
 * data only through these methods; SQL lives in src/store/backends/ and nowhere else.
 * Every method is async and states its atomicity: "atomic" means all-or-nothing in one transaction;
 * "durable" means the promise resolves only after the change is on stable storage.
 * Errors are StoreError (see errors.ts) with a kind; backends never leak driver errors unwrapped.
 * Times are milliseconds since the epoch; every time-dependent call takes `now` from the injected clock.
 */

/** sha256 of the content, lowercase hex. */
export type BlobId = string;

/** Inclusive UID range; `to` may be Number.MAX_SAFE_INTEGER for "*". */
export interface UidRange {
  from: number;
  to: number;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

// ---------------------------------------------------------------- directory

export interface Domain {
  name: string;
  createdAt: number;
}

export interface Account {
  id: number;
  /** lowercased `local@domain` */
  address: string;
  domain: string;
  /** scrypt hash in the format of src/auth/password.ts, or null when the account cannot log in */
  passwordHash: string | null;
  /** bytes, or null for no limit */
  quotaBytes: number | null;
  createdAt: number;
}

export interface NewAccount {
  address: string;
  passwordHash: string | null;
  quotaBytes?: number | null;
}

export interface Alias {
  /** `local@domain`, or `@domain` for a catch-all */
  source: string;
  targets: string[];
}

/**
 * Domains, accounts and aliases. Addresses and domains are compared case-insensitively: the store
 * lowercases them on the way in. Each method is atomic and durable.
 */
export interface DirectoryStore {
  /** throws `exists` */
  addDomain(name: string): Promise<Domain>;
  listDomains(): Promise<Domain[]>;
  getDomain(name: string): Promise<Domain | null>;
  /** throws `not_found`; `conflict` while accounts or aliases of the domain remain */
  removeDomain(name: string): Promise<void>;

  /** throws `not_found` when the domain does not exist, `exists` when the address is an account or alias */
  addAccount(account: NewAccount): Promise<Account>;
  getAccount(address: string): Promise<Account | null>;
  getAccountById(id: number): Promise<Account | null>;
  /** sorted by address */
  listAccounts(domain?: string): Promise<Account[]>;
  /** throws `not_found` */
  setPassword(address: string, passwordHash: string | null): Promise<void>;
  /** throws `not_found` */
  setQuota(address: string, quotaBytes: number | null): Promise<void>;
  /** Removes the account with its mailboxes and messages (their blob references are dropped). throws `not_found` */
  removeAccount(address: string): Promise<void>;

  /** throws `not_found` when the domain does not exist, `exists` when the source is an alias or account, `invalid` for an empty target list */
  addAlias(alias: Alias): Promise<Alias>;
  getAlias(source: string): Promise<Alias | null>;
  /** sorted by source */
  listAliases(domain?: string): Promise<Alias[]>;
  /** throws `not_found` */
  removeAlias(source: string): Promise<void>;
}

// ---------------------------------------------------------------- queue

export interface QueueRecipientInput {
  address: string;
  /** RFC 3461 ORCPT, as received */
  orcpt?: string | null;
  /** RFC 3461 NOTIFY values, e.g. ["SUCCESS","FAILURE"] or ["NEVER"] */
  notify?: string[] | null;
}

export interface NewQueueMessage {
  /** envelope sender; "" for the null sender */
  sender: string;
  recipients: QueueRecipientInput[];
  /** the whole message as it will be delivered (headers + body, CRLF line ends) */
  content: Buffer;
  /** envelope details for the log and for DSNs: client, helo, auth, ret, envid, body type… (JSON-serialisable) */
  meta?: Record<string, unknown>;
  /** put the entry on hold instead of making it due */
  hold?: boolean;
  /** first delivery attempt not before this time; default now */
  dueAt?: number;
  /**
   * Receipts (docs/xqueueid.md): one per recipient the client named, under a key derived from its queue
   * id and bytes (src/queue/receipts.ts). A recipient whose every receipt already exists is left out.
   */
  receipts?: QueueReceiptInput[];
  /**
   * Recipients the store may file into a mailbox in the commit itself, instead of queueing them for the
   * local delivery agent (one transaction instead of commit, lease, append and complete). A recipient it
   * cannot file (over quota, mailbox gone, its domain paused) is queued as usual; so is every recipient
   * where QueueStore.filesAtCommit is false. Ignored with `hold`.
   */
  file?: FileAtCommit[];
}

/** A local delivery done at commit: the message as `prefix` over the committed bytes, keyed `<queue id>:<recipient>`. */
export interface FileAtCommit {
  /** one of the message's recipients */
  recipient: string;
  mailboxId: number;
  /** the delivery's trace headers */
  prefix: Buffer;
  /** the MIME structure of prefix + content (NewMessage.structure) */
  structure?: string;
  /** NewMessage.deliveryDigest: an exact copy delivered to the account lately is not filed again */
  deliveryDigest?: DeliveryDigest;
}

/** A recipient as the client gave it, keyed, and the queue recipients (addresses) it became. */
export interface QueueReceiptInput {
  key: string;
  /** addresses in `recipients` this one expanded to (at least one) */
  addresses: string[];
}

/** What queue.commit made. Without receipts: created, no duplicates. */
export interface QueueCommitResult {
  /** the new entry's id, or (created: false) the entry that holds the first duplicate */
  id: string;
  blobId: BlobId;
  /** false when every recipient was a duplicate: nothing was written */
  created: boolean;
  /** recipients left out because an earlier commit holds their receipts, and the first such entry */
  duplicates?: { addresses: string[]; of: string };
  /** recipients filed into their mailboxes by the commit (NewQueueMessage.file); none of them is queued */
  filed?: string[];
}

export type RecipientState = 'pending' | 'done' | 'failed';

export interface QueueRecipient {
  id: number;
  address: string;
  orcpt: string | null;
  notify: string[] | null;
  state: RecipientState;
  attempts: number;
  /** last delivery error text (for the log, postqueue -p and DSNs) */
  lastError: string | null;
}

export type QueueEntryState = 'active' | 'held';

export interface QueueEntry {
  id: string;
  sender: string;
  meta: Record<string, unknown>;
  blobId: BlobId;
  size: number;
  receivedAt: number;
  state: QueueEntryState;
  /** when the entry is next due (for a leased entry: when the lease runs out) */
  dueAt: number;
  attempts: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  recipients: QueueRecipient[];
}

/** A leased entry. `token` fences every later write: a newer lease bumps it. */
export interface Lease {
  entry: QueueEntry;
  token: number;
  expiresAt: number;
}

export interface LeaseRequest {
  /** node or worker name, for the admin view */
  owner: string;
  limit: number;
  leaseMs: number;
  now: number;
}

export type RecipientOutcome =
  | { recipientId: number; outcome: 'done'; reason?: string }
  | { recipientId: number; outcome: 'failed'; reason: string }
  | { recipientId: number; outcome: 'deferred'; reason: string; retryAt: number };

export interface CompleteResult {
  /** recipients still pending after this call */
  pending: number;
  /** true when every recipient is done or failed and the entry was removed */
  removed: boolean;
}

export interface QueueCounts {
  active: number;
  held: number;
  leased: number;
  due: number;
}

/** A destination domain whose mail waits (`cartero queue pause`), seen by every node on the store. */
export interface QueuePause {
  /** lowercased domain */
  domain: string;
  /** who paused it, e.g. "alice (pid 4242) on mx1" */
  by: string;
  since: number;
}

/** One administrative action on the queue, kept so that every node's admin can see who did what. */
export interface QueueAdminRecord {
  at: number;
  /** who did it, e.g. "alice (pid 4242) on mx1" or "smtp 192.0.2.7" */
  actor: string;
  /** hold, release, requeue, delete, flush, pause, resume, etrn … */
  action: string;
  /** a queue id or a domain */
  target: string;
  detail: string | null;
}

/**
 * The hand-off between receiving and delivering.
 */
export interface QueueStore {
  /** Whether `commit` files the recipients of NewQueueMessage.file; when false it queues them all. */
  readonly filesAtCommit: boolean;
  /** Atomic and durable: blob, entry and recipients are on stable storage when it resolves. Returns the queue id. */
  commit(message: NewQueueMessage, now: number): Promise<QueueCommitResult>;
  /**
   * Atomic: hands out up to `limit` active entries that are due (dueAt <= now, including entries whose
   * lease expired), each with a new token. Parallel callers, on any node, never get the same entry.
   */
  lease(request: LeaseRequest): Promise<Lease[]>;
  /** Extends a lease still held with this token; throws `stale_lease` otherwise. */
  renew(id: string, token: number, leaseMs: number, now: number): Promise<number>;
  /**
   * Atomic with the token check: throws `stale_lease` when `token` is not the entry's current token (or the
   * entry is gone); then records the outcomes, releases the lease, and sets the entry due at the earliest
   * retryAt of a deferred recipient. Recipients not named stay pending and due now. When no recipient
   * is pending any more, the entry is removed and its blob reference dropped.
   */
  complete(id: string, token: number, outcomes: RecipientOutcome[], now: number): Promise<CompleteResult>;
  /** throws `not_found`. Holding a leased entry lets its holder finish but it will not be leased again. */
  hold(id: string): Promise<void>;
  /** throws `not_found`; makes a held entry active and due now */
  release(id: string, now: number): Promise<void>;
  /** Makes an entry due now (postqueue -f / -i). throws `not_found` */
  requeue(id: string, now: number): Promise<void>;
  /** Removes the entry whatever its state (postsuper -d). throws `not_found` */
  remove(id: string): Promise<void>;
  get(id: string): Promise<QueueEntry | null>;
  /** oldest first */
  list(filter?: { state?: QueueEntryState; limit?: number }): Promise<QueueEntry[]>;
  counts(now: number): Promise<QueueCounts>;
  /** The message bytes, verified against their hash. throws `not_found`, `corrupt` */
  content(id: string): Promise<Buffer>;
  /**
   * Atomic: makes every active entry with a pending recipient in `domain` (with `subdomains`, also in
   * any subdomain of it) due now, as requeue does (a live lease keeps its expiry). Returns their ids,
   * oldest first. ETRN, `queue flush DOMAIN`. throws `invalid` for a malformed domain
   */
  flushDomain(domain: string, now: number, options?: { subdomains?: boolean }): Promise<string[]>;
  /**
   * Atomic and durable: from now on lease() skips entries whose every pending recipient is in `domain`
   * (entries with other recipients are still leased; the scheduler defers the paused ones). Returns
   * false, changing nothing, when the domain is already paused. throws `invalid` for a malformed domain
   */
  pause(domain: string, by: string, now: number): Promise<boolean>;
  /** Atomic: lifts the pause and makes the domain's entries due now (as flushDomain); returns their ids. throws `not_found` when not paused */
  resume(domain: string, now: number): Promise<string[]>;
  /** paused domains, sorted by domain */
  pauses(): Promise<QueuePause[]>;
  /** Durable: appends one record to the admin log (it outlives the entry it names). */
  recordAdmin(record: QueueAdminRecord): Promise<void>;
  /** The admin log in time order, only records naming `target` when given; `limit` keeps the newest ones. */
  adminLog(filter?: { target?: string; limit?: number }): Promise<QueueAdminRecord[]>;
  /** Atomic: removes receipts created before `before` (their senders have given up); returns how many. */
  pruneReceipts(before: number): Promise<number>;
}

// ---------------------------------------------------------------- mailboxes and messages

export interface Mailbox {
  id: number;
  accountId: number;
  name: string;
  /** RFC 6154 attribute such as "\\Sent", or null */
  specialUse: string | null;
  subscribed: boolean;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  messages: number;
  unseen: number;
  /** total bytes of the messages */
  size: number;
}

export interface MessageMeta {
  uid: number;
  modseq: number;
  flags: string[];
  internalDate: number;
  size: number;
  blobId: BlobId;
}

/** Parallel arrays, one entry per message; message k has the flags `flagSets[flags[k]]`. */
export interface MessageIndex {
  uids: number[];
  modseqs: number[];
  internalDates: number[];
  sizes: number[];
  flags: number[];
  flagSets: string[][];
}

export interface NewMessage {
  /** content to store, or `blobId` of an existing blob (e.g. the queue's) to share */
  content?: Buffer;
  blobId?: BlobId;
  /**
   * With `blobId` only: bytes of this message alone, stored before the blob's. A delivery's trace headers
   * (Return-Path:, Delivered-To:) over the queued message, whose bytes are then stored once for every
   * mailbox that receives it. The message is `prefix` + blob; its size counts both.
   */
  prefix?: Buffer;
  flags?: string[];
  internalDate?: number;
  /** unique per account: appending the same key again returns the first message (duplicate: true) */
  idempotencyKey?: string;
  /** exact-duplicate suppression of a delivery (DeliveryDigest); never for a client's APPEND */
  deliveryDigest?: DeliveryDigest;
  /** the message's parsed MIME structure, serialised (src/mime serializeStructure); opaque to the store */
  structure?: string;
}

/**
 * Cyrus's duplicate delivery suppression, narrowed to exact copies: `digest` stands for the message's
 * Message-ID and body (src/delivery/duplicate-digest.ts). When a message with the same digest was
 * delivered to the same account at or after `since`, nothing is filed and the append answers
 * `duplicate: true` with uid, modseq and uidValidity 0 (the first copy may have been moved or expunged
 * since). Otherwise the digest is recorded with the new message, in the same transaction.
 */
export interface DeliveryDigest {
  digest: string;
  since: number;
}

export interface AppendResult {
  /** 0 (as are modseq and uidValidity) when a delivery digest suppressed the message */
  uid: number;
  modseq: number;
  uidValidity: number;
  duplicate: boolean;
}

export type FlagOperation = 'add' | 'remove' | 'replace';

export interface FlagUpdateResult {
  updated: { uid: number; modseq: number; flags: string[] }[];
  /** UIDs skipped because their modseq was above `unchangedSince` (CONDSTORE) */
  modified: number[];
}

export interface CopyResult {
  uidValidity: number;
  /** [source uid, destination uid] pairs in source order */
  uids: [number, number][];
}

export interface Quota {
  bytes: number;
  messages: number;
  limitBytes: number | null;
}

export interface MailboxStore {
  /** throws `exists`, `not_found` (account) */
  create(accountId: number, name: string, options?: { specialUse?: string | null; subscribed?: boolean }): Promise<Mailbox>;
  get(accountId: number, name: string): Promise<Mailbox | null>;
  getById(id: number): Promise<Mailbox | null>;
  /** sorted by name */
  list(accountId: number): Promise<Mailbox[]>;
  /**
   * Atomic. With `separator`, children (`from` + separator + …) move along. UIDVALIDITY is kept.
   * throws `not_found`, `exists`
   */
  rename(accountId: number, from: string, to: string, options?: { separator?: string }): Promise<void>;
  /** Atomic: the mailbox and its messages (blob references dropped). throws `not_found` */
  delete(accountId: number, name: string): Promise<void>;
  /** throws `not_found` */
  setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void>;
}

export interface MessageStore {
  /**
   * Atomic and durable: allocates the next UID and MODSEQ of the mailbox. Concurrent appends get
   * distinct, increasing UIDs and a reader never sees a gap. Throws `over_quota` when the account's quota
   * would be exceeded, `not_found` for a missing mailbox or blob.
   */
  append(mailboxId: number, message: NewMessage, now: number): Promise<AppendResult>;
  /** sorted by UID; all messages when `uids` is omitted */
  list(mailboxId: number, uids?: UidRange[]): Promise<MessageMeta[]>;
  /**
   * The same rows as `list` in a compact, columnar form for views of large mailboxes (IMAP SELECT of
   * 100,000 messages): no blob ids, and each distinct flag set once. Sorted by UID; all messages when
   * `uids` is omitted; empty for an unknown mailbox.
   */
  index(mailboxId: number, uids?: UidRange[]): Promise<MessageIndex>;
  /**
   * The stored structures, sorted by UID (all messages when `uids` is omitted); `structure` is null for a
   * message stored without one. Copies and moves carry the structure along. [] for an unknown mailbox.
   */
  structures(mailboxId: number, uids?: UidRange[]): Promise<{ uid: number; structure: string | null }[]>;
  /** Atomic; each changed message gets a new MODSEQ. `unchangedSince` as in CONDSTORE. */
  setFlags(
    mailboxId: number,
    uids: UidRange[],
    operation: FlagOperation,
    flags: string[],
    options?: { unchangedSince?: number },
  ): Promise<FlagUpdateResult>;
  /** Atomic: removes messages flagged \Deleted (only those in `uids` when given). Returns expunged UIDs. */
  expunge(mailboxId: number, uids?: UidRange[]): Promise<number[]>;
  /** Atomic. throws `not_found`, `over_quota` */
  copy(fromMailboxId: number, uids: UidRange[], toMailboxId: number, now: number): Promise<CopyResult>;
  /** Atomic copy + expunge from the source (regardless of \Deleted). */
  move(fromMailboxId: number, uids: UidRange[], toMailboxId: number, now: number): Promise<CopyResult>;
  /** verified against the hash; throws `not_found`, `corrupt` */
  content(mailboxId: number, uid: number): Promise<Buffer>;
  quota(accountId: number): Promise<Quota>;
  /** Forgets delivery digests (NewMessage.deliveryDigest) recorded before `before`; returns how many. */
  pruneDigests(before: number): Promise<number>;
  // --- IMAP read paths (SELECT/FETCH of large mailboxes) ---
  /**
   * The distinct flag sets of the mailbox's messages (each set normalised as stored), read without
   * visiting every message: SELECT's FLAGS response needs the keywords in use, not the messages. [] for
   * an unknown or empty mailbox.
   */
  flagSets(mailboxId: number): Promise<string[][]>;
  /**
   * `index` for the messages with UID >= `fromUid` (default all), as typed arrays (cheap to move between
   * threads, a few bytes per message), read in one snapshot together with the mailbox's HIGHESTMODSEQ.
   * Empty with highestModseq 0 for an unknown mailbox.
   */
  compactIndex(mailboxId: number, fromUid?: number): Promise<CompactIndex>;
  /**
   * The bytes of several messages in one round trip, in the order of `uids`; null for a message that is
   * gone. Each verified against its hash (throws `corrupt`), as `content`. `purpose`: 'answer' (default)
   * for bytes a client waits for (FETCH, RETR), 'scan' for one batch of a pass over a mailbox (SEARCH),
   * which a backend may read where it overlaps the caller's work rather than where it is quickest.
   */
  contents(mailboxId: number, uids: readonly number[], purpose?: ContentsPurpose): Promise<(Buffer | null)[]>;
}

export type ContentsPurpose = 'answer' | 'scan';

/** A columnar message index (see MessageStore.compactIndex): message k has flags `flagSets[flags[k]]`. */
export interface CompactIndex {
  uids: Float64Array;
  modseqs: Float64Array;
  internalDates: Float64Array;
  sizes: Float64Array;
  flags: Uint32Array;
  flagSets: string[][];
  /** the mailbox's HIGHESTMODSEQ in the same snapshot as the rows */
  highestModseq: number;
}

// ---------------------------------------------------------------- change feed

export type MailboxChange =
  | { kind: 'append'; uid: number; modseq: number }
  | { kind: 'flags'; uid: number; modseq: number; flags: string[] }
  | { kind: 'expunge'; uid: number; modseq: number };

export interface MailboxSignal {
  mailboxId: number;
  highestModseq: number;
}

/**
 * `since` is the durable truth (built from messages and expunge records); `subscribe` is only a wake-up
 * call, delivered within about a second, across processes on the postgres backend. A session that is
 * woken asks `since` for what changed.
 */
export interface ChangeFeed {
  /** changes with modseq > `modseq`, in modseq order */
  since(mailboxId: number, modseq: number): Promise<MailboxChange[]>;
  subscribe(mailboxId: number, listener: (signal: MailboxSignal) => void): () => void;
}

// ---------------------------------------------------------------- blobs

export interface BlobStore {
  /** Durable; content-addressed, so equal content is stored once. The new blob has no reference yet. */
  put(content: Buffer): Promise<{ id: BlobId; size: number }>;
  /** verified against the hash; throws `not_found`, `corrupt` */
  get(id: BlobId): Promise<Buffer>;
  /** Removes blobs without references older than `graceMs`, and stray files. Returns how many were removed. */
  collect(now: number, graceMs: number): Promise<number>;
  /** the reference count, or null when the blob is unknown (for tests and fsck) */
  refs(id: BlobId): Promise<number | null>;
}

// ---------------------------------------------------------------- cluster membership and singleton jobs

/** What a node says about itself when it joins (src/cluster/membership.ts). */
export interface NodeInfo {
  /** unique in the cluster (default: the node's hostname); registering it again replaces the old row */
  name: string;
  /** the machine's host name */
  hostname: string;
  pid: number;
  /** what this node serves: protocols with listeners, and "delivery" when it runs the scheduler */
  roles: string[];
  version: string;
  /** the node's heartbeat interval, so any reader can tell a dead node without the node's config */
  heartbeatMs: number;
}

export interface ClusterNode extends NodeInfo {
  /** random per registration: a heartbeat from an older registration under the same name is refused */
  incarnation: string;
  startedAt: number;
  lastHeartbeat: number;
}

/** A singleton job and the node whose lock session holds it (node null: nobody holds it now). */
export interface JobHolder {
  job: string;
  node: string | null;
  /** when the holder took it */
  since: number | null;
}

/**
 * Locks of singleton jobs, held by one session: on PostgreSQL a dedicated connection holding
 * session-level advisory locks, so the locks of a dead node go away with its connection; on the
 * embedded store (one node) every lock is granted to the local node.
 */
export interface JobLocks {
  /** true when this session holds (or has just taken) the job's lock; false when another holds it */
  tryAcquire(job: string, now: number): Promise<boolean>;
  release(job: string): Promise<void>;
  /** Proves the session is alive, and with it every lock it holds; throws `unavailable` when it is lost. */
  check(): Promise<void>;
  /** Ends the session: every lock it held is released. Never throws. */
  close(): Promise<void>;
}

/** The database's own view, for `cartero cluster status` (PostgreSQL only). */
export interface DatabaseView {
  version: string;
  /** the server we are connected to */
  server: string;
  /** true on a standby */
  inRecovery: boolean;
  readOnly: boolean;
  synchronousCommit: string;
  synchronousStandbyNames: string;
  /** on a primary: its standbys as pg_stat_replication shows them (empty when none or not visible) */
  replicas: { name: string; clientAddr: string | null; state: string | null; syncState: string | null; replayLagMs: number | null; replayLagBytes: number | null }[];
  /** on a standby: how far replay is behind the last transaction received (ms), when known */
  replayDelayMs: number | null;
}

/**
 * The node registry, lease holders and singleton job locks. Each method is atomic.
 * A node is alive while its last heartbeat is recent; readers judge that from `heartbeatMs`.
 */
export interface ClusterStore {
  /** Inserts the node, or replaces the row of the same name (a restarted node); returns it with a new incarnation. */
  register(node: NodeInfo, now: number): Promise<ClusterNode>;
  /** throws `not_found` when the row is gone (pruned), `conflict` when another registration replaced it */
  heartbeat(name: string, incarnation: string, now: number): Promise<void>;
  /** removes the row if it is still this incarnation's (graceful stop) */
  deregister(name: string, incarnation: string): Promise<void>;
  /** sorted by name */
  nodes(): Promise<ClusterNode[]>;
  /** removes nodes whose last heartbeat is older than `before`; returns their names */
  prune(before: number): Promise<string[]>;
  /** live queue leases (expiring after `now`) counted by lease owner, sorted by owner */
  leases(now: number): Promise<{ owner: string; count: number }[]>;
  /** every job ever locked, with its current holder, sorted by job */
  jobHolders(): Promise<JobHolder[]>;
  /** opens a lock session for `node`; throws `unavailable` when the database cannot be reached */
  openJobLocks(node: string): Promise<JobLocks>;
  /** null on the embedded store */
  database(): Promise<DatabaseView | null>;
  /** Cluster-wide per-destination delivery slots; absent on the embedded backend (one node, limit in process). */
  readonly destinationSlots?: DestinationSlotStore;
}

// ---- destination slots (cluster-wide smtp_client.destination_concurrency; src/cluster/destination-slots.ts)
/**
 * Slot rows (destination, slot) with slot < limit, each held by one delivery under a lease: at most
 * `limit` deliveries to a destination at once across every node. A dead node's slots expire with their
 * lease. Each method is atomic.
 */
export interface DestinationSlotStore {
  /** Takes a free slot number below `limit` (one whose lease ran out counts as free), or null when all are held. */
  acquire(a: { destination: string; limit: number; owner: string; holder: string; leaseMs: number; now: number }): Promise<number | null>;
  /** Extends the lease; false when the slot is no longer this holder's (it expired and was taken). */
  renew(destination: string, slot: number, holder: string, leaseMs: number, now: number): Promise<boolean>;
  /** Frees the slot if this holder still has it. */
  release(destination: string, slot: number, holder: string): Promise<void>;
  /** Live slots per destination (owner → count), for status and tests. */
  held(now: number): Promise<{ destination: string; owner: string; count: number }[]>;
}
// ---- end destination slots

// ---------------------------------------------------------------- bulk copy between stores

/**
 * A message row as stored, for copying a mailbox to another store without renumbering it: IMAP clients
 * keep their caches only when UIDVALIDITY, UIDs and MODSEQs are unchanged.
 */
export interface BulkMessage {
  uid: number;
  modseq: number;
  /** the MODSEQ of its append or copy: the change feed tells an append from a flag change by it */
  createdModseq: number;
  flags: string[];
  internalDate: number;
  size: number;
  blobId: BlobId;
  /** the message's own leading bytes (NewMessage.prefix); null or absent when it is the blob alone */
  prefix?: Buffer | null;
  structure: string | null;
  /** the key it was appended with (a delivery's `queueId:recipient`), while the store still knows it */
  idempotencyKey: string | null;
}

/** A mailbox as it is, with the expunge records the change feed reports (QRESYNC's VANISHED). */
export interface BulkMailbox {
  name: string;
  specialUse: string | null;
  subscribed: boolean;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  expunged: { uid: number; modseq: number }[];
}

/** A queue entry as it is, without its lease. Recipients keep their states, attempts and last errors. */
export interface BulkQueueEntry {
  id: string;
  sender: string;
  meta: Record<string, unknown>;
  receivedAt: number;
  state: QueueEntryState;
  dueAt: number;
  attempts: number;
  recipients: Omit<QueueRecipient, 'id'>[];
}

/**
 * Rows read and written as they are, for `cartero store migrate`: no UID or MODSEQ allocation, no quota
 * check, no change signal. Meant for a target no node serves yet; each write is atomic and durable.
 */
export interface BulkStore {
  /** Messages with UID > `afterUid`, sorted by UID, at most `limit`; [] for an unknown mailbox. */
  exportMessages(mailboxId: number, afterUid: number, limit: number): Promise<BulkMessage[]>;
  /**
   * Creates the mailbox with the UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and expunge records given (later
   * creates in the account never reuse its UIDVALIDITY). throws `not_found` (account), `exists`,
   * `invalid` (a UID not below UIDNEXT, a MODSEQ above HIGHESTMODSEQ, numbers out of range)
   */
  importMailbox(accountId: number, mailbox: BulkMailbox): Promise<Mailbox>;
  /**
   * Inserts messages at their own UIDs and MODSEQs with `content`, the whole message: `prefix` then the
   * blob's bytes (hashed again: `blobId` must match them)
   * and keeps the mailbox counters exact. throws `not_found` (mailbox), `exists` (a UID or idempotency key
   * taken, or an expunged UID), `invalid` (UID not below UIDNEXT, MODSEQ above HIGHESTMODSEQ, bad flags)
   */
  importMessages(mailboxId: number, messages: (BulkMessage & { content: Buffer })[]): Promise<void>;
  /** Inserts an unleased queue entry under its own id. throws `exists`, `invalid` (no recipient, bad state) */
  importQueueEntry(entry: BulkQueueEntry, content: Buffer): Promise<void>;
}

// ---------------------------------------------------------------- lookup maps (routing tables kept in the store)

/** One entry of a lookup map kept in the store (`{ store: NAME }` in a *_maps key). */
export interface StoredMapEntry {
  /** lowercased, one word */
  key: string;
  value: string;
  updatedAt: number;
  /** who set it last, e.g. "alice (pid 4242) on mx1"; null when not told */
  updatedBy: string | null;
}

export interface StoredMapInfo {
  /** lowercased map name */
  name: string;
  entries: number;
  /** bumped by every change of the map; 0 for a map never written */
  generation: number;
  /** time of the last change */
  updatedAt: number;
}

/** What an import did to a map. */
export interface StoredMapReplaceResult {
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  generation: number;
}

/**
 * Lookup maps shared by every node: (map, key) -> value. Map names and keys are lowercased on the way
 * in; malformed names, keys or values throw `invalid` (what a value means is the caller's business:
 * routing/store-map.ts checks it for its role). Every write is atomic and durable and bumps the map's
 * generation in the same transaction, so a node that caches a map reloads it when the number moves.
 */
export interface MapStore {
  /** Upsert. Returns whether the key is new and the map's new generation. */
  set(map: string, key: string, value: string, by: string | null, now: number): Promise<{ created: boolean; generation: number }>;
  /** throws `not_found` when the key has no entry; returns the map's new generation */
  delete(map: string, key: string, by: string | null, now: number): Promise<number>;
  get(map: string, key: string): Promise<StoredMapEntry | null>;
  /** Entries sorted by key, with key > `after` when given; at most `limit` (default 1000, at most 10000). */
  list(map: string, options?: { after?: string; limit?: number }): Promise<StoredMapEntry[]>;
  /**
   * Atomic: makes the map hold exactly `entries` (Postfix's postmap of a whole file): entries whose value
   * is unchanged keep their updatedAt; keys must be distinct after lowercasing (`invalid` otherwise).
   */
  replace(map: string, entries: readonly { key: string; value: string }[], by: string | null, now: number): Promise<StoredMapReplaceResult>;
  /** The current generation of each named map (0 for a map never written): one cheap query. */
  generations(maps: readonly string[]): Promise<Record<string, number>>;
  /** every map ever written, sorted by name */
  maps(): Promise<StoredMapInfo[]>;
}

// ---------------------------------------------------------------- the store

export type BackendName = 'embedded' | 'postgres';

export interface Store {
  readonly backend: BackendName;
  readonly directory: DirectoryStore;
  readonly queue: QueueStore;
  readonly mailboxes: MailboxStore;
  readonly messages: MessageStore;
  readonly changes: ChangeFeed;
  readonly blobs: BlobStore;
  readonly cluster: ClusterStore;
  readonly bulk: BulkStore;
  readonly maps: MapStore;
  /** Applies pending schema migrations; returns the versions applied. Idempotent. */
  migrate(): Promise<number[]>;
  /** Checks the store is reachable and writable (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
