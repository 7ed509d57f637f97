/*
 * Copies one Store into another as it is (`cartero store migrate`: a single node growing into a cluster
 * on PostgreSQL) and then proves the copy by reading both again. Mailboxes keep UIDVALIDITY, UIDs,
 * MODSEQs, flags and expunge records so IMAP clients keep their caches; the queue keeps its ids, so
 * delivery idempotency keys (`queueId:recipient`) still match. Leases are dropped.
 * Works through the Store API only (BulkStore for rows as they are). The source must not be served
 * meanwhile: copyStore refuses a source with a live node, and verifyCopy reports anything that changed.
 * Errors: CopyError for a refusal; StoreErrors from either store propagate unchanged.
 */
import { createHash } from 'node:crypto';
import type { Account, BulkMessage, Clock, Mailbox, QueueEntry, Store } from './api.js';
import { sha256 } from './common.js';

export type CopyErrorKind = 'target_not_empty' | 'target_has_schema' | 'source_live' | 'target_live';

export class CopyError extends Error {
  override readonly name = 'CopyError';
  constructor(
    readonly kind: CopyErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface CopyOptions {
  clock?: Clock;
  /** a message batch is imported once it holds this many messages or bytes (defaults 200, 8 MiB) */
  batchMessages?: number;
  batchBytes?: number;
  /** called after each mailbox and after the queue, for progress lines */
  onProgress?: (event: { what: 'mailbox'; account: string; mailbox: string; messages: number } | { what: 'queue'; entries: number }) => void;
}

export interface CopySummary {
  domains: number;
  accounts: number;
  aliases: number;
  mailboxes: number;
  messages: number;
  /** message bytes copied (a blob shared by several messages counts each time) */
  bytes: number;
  expunged: number;
  idempotencyKeys: number;
  queueEntries: number;
  queueRecipients: number;
  /** entries that were leased in the source; the lease was dropped and the entry made due */
  leasesDropped: number;
}

const PAGE = 500;

/** A node counts as alive until it missed this many heartbeats (src/cluster's default). */
export const MISSED_HEARTBEATS = 3;

/** Names of nodes whose heartbeat is recent: a served store. */
export async function liveNodes(store: Store, now: number): Promise<string[]> {
  const nodes = await store.cluster.nodes();
  return nodes.filter((n) => now - n.lastHeartbeat <= n.heartbeatMs * MISSED_HEARTBEATS).map((n) => n.name);
}

/** What the target holds: a target is empty without domains (hence accounts, aliases, mailboxes) and queue entries. */
export async function targetContents(store: Store): Promise<{ domains: number; accounts: number; queueEntries: number }> {
  const [domains, accounts, queue] = await Promise.all([store.directory.listDomains(), store.directory.listAccounts(), store.queue.list({ limit: 1 })]);
  return { domains: domains.length, accounts: accounts.length, queueEntries: queue.length };
}

/**
 * Refuses a target that holds data, one served by a live node, or (without `force`) one whose schema
 * existed before this run (`freshSchema`: its migrate() applied the first version just now).
 */
export async function checkTarget(target: Store, options: { freshSchema: boolean; force: boolean; now: number }): Promise<void> {
  const c = await targetContents(target);
  if (c.domains > 0 || c.accounts > 0 || c.queueEntries > 0) {
    throw new CopyError(
      'target_not_empty',
      `the target store is not empty (${c.domains} domains, ${c.accounts} accounts, ${c.queueEntries > 0 ? 'queue entries' : 'no queue entries'}): migrate into a fresh database`,
    );
  }
  const live = await liveNodes(target, options.now);
  if (live.length > 0) throw new CopyError('target_live', `node ${live.join(', ')} is serving the target store: stop it until the migration is done`);
  if (!options.freshSchema && !options.force) {
    throw new CopyError('target_has_schema', 'the target already has a Cartero schema (it is empty): pass --force to migrate into it, or use a fresh database');
  }
}

export async function checkSource(source: Store, now: number): Promise<void> {
  const live = await liveNodes(source, now);
  if (live.length > 0) {
    throw new CopyError(
      'source_live',
      `node ${live.join(', ')} is serving the source store (heartbeat within the last ${MISSED_HEARTBEATS} intervals): stop it first, so that no mail arrives during the copy`,
    );
  }
}

/** Every expunge record of a mailbox (the change feed since MODSEQ 0), sorted by UID. */
async function expungesOf(store: Store, mailboxId: number): Promise<{ uid: number; modseq: number }[]> {
  const changes = await store.changes.since(mailboxId, 0);
  return changes
    .filter((c) => c.kind === 'expunge')
    .map((c) => ({ uid: c.uid, modseq: c.modseq }))
    .sort((a, b) => a.uid - b.uid);
}

/** Pages through a mailbox's messages as stored. */
async function* messagesOf(store: Store, mailboxId: number): AsyncGenerator<BulkMessage> {
  let after = 0;
  for (;;) {
    const page = await store.bulk.exportMessages(mailboxId, after, PAGE);
    for (const m of page) yield m;
    const last = page[page.length - 1];
    if (!last || page.length < PAGE) return;
    after = last.uid;
  }
}

async function copyMailbox(source: Store, target: Store, box: Mailbox, targetAccount: Account, options: CopyOptions, summary: CopySummary): Promise<number> {
  const expunged = await expungesOf(source, box.id);
  const copy = await target.bulk.importMailbox(targetAccount.id, {
    name: box.name,
    specialUse: box.specialUse,
    subscribed: box.subscribed,
    uidValidity: box.uidValidity,
    uidNext: box.uidNext,
    highestModseq: box.highestModseq,
    expunged,
  });
  summary.expunged += expunged.length;
  const maxMessages = options.batchMessages ?? 200;
  const maxBytes = options.batchBytes ?? 8 * 1024 * 1024;
  let batch: (BulkMessage & { content: Buffer })[] = [];
  let bytes = 0;
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await target.bulk.importMessages(copy.id, batch);
    batch = [];
    bytes = 0;
  };
  for await (const m of messagesOf(source, box.id)) {
    // read through the API, so the bytes are checked against their hash on the way out
    const content = await source.messages.content(box.id, m.uid);
    batch.push({ ...m, content });
    bytes += content.length;
    count++;
    summary.bytes += content.length;
    if (m.idempotencyKey !== null) summary.idempotencyKeys++;
    if (batch.length >= maxMessages || bytes >= maxBytes) await flush();
  }
  await flush();
  return count;
}

/**
 * Copies directory, mailboxes with their messages, and the queue from `source` into `target`, which the
 * caller has checked (checkSource, checkTarget). Not atomic: on a failure the target holds a partial
 * copy, to be dropped and started again.
 */
export async function copyStore(source: Store, target: Store, options: CopyOptions = {}): Promise<CopySummary> {
  const now = (options.clock ?? { now: () => Date.now() }).now();
  const summary: CopySummary = { domains: 0, accounts: 0, aliases: 0, mailboxes: 0, messages: 0, bytes: 0, expunged: 0, idempotencyKeys: 0, queueEntries: 0, queueRecipients: 0, leasesDropped: 0 };

  for (const d of await source.directory.listDomains()) {
    await target.directory.addDomain(d.name);
    summary.domains++;
  }
  for (const a of await source.directory.listAccounts()) {
    const copy = await target.directory.addAccount({ address: a.address, passwordHash: a.passwordHash, quotaBytes: a.quotaBytes });
    summary.accounts++;
    for (const box of await source.mailboxes.list(a.id)) {
      const n = await copyMailbox(source, target, box, copy, options, summary);
      summary.mailboxes++;
      summary.messages += n;
      options.onProgress?.({ what: 'mailbox', account: a.address, mailbox: box.name, messages: n });
    }
  }
  for (const alias of await source.directory.listAliases()) {
    await target.directory.addAlias(alias);
    summary.aliases++;
  }

  for (const e of await source.queue.list()) {
    const content = await source.queue.content(e.id);
    const leased = e.leaseExpiresAt !== null;
    await target.bulk.importQueueEntry(
      {
        id: e.id,
        sender: e.sender,
        meta: e.meta,
        receivedAt: e.receivedAt,
        state: e.state,
        // a leased entry's due time is its lease's end: its holder is gone, so it is due now at the latest
        dueAt: leased ? Math.min(e.dueAt, now) : e.dueAt,
        attempts: e.attempts,
        recipients: e.recipients.map(({ id: _id, ...r }) => r),
      },
      content,
    );
    summary.queueEntries++;
    summary.queueRecipients += e.recipients.length;
    if (leased) summary.leasesDropped++;
  }
  options.onProgress?.({ what: 'queue', entries: summary.queueEntries });
  return summary;
}

// ---------------------------------------------------------------- verification

export interface MailboxCheck {
  account: string;
  mailbox: string;
  uidValidity: number;
  messages: number;
  /** sha256 over every message row (UID, MODSEQ, flags, date, size, structure, key), the bytes' hashes and the expunge records */
  digest: string;
  ok: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** one line per difference found (the first `limit`), then a count of the rest */
  mismatches: string[];
  mailboxes: MailboxCheck[];
  queue: { entries: number; recipients: number; digest: string; ok: boolean };
  directory: { domains: number; accounts: number; aliases: number; ok: boolean };
}

/** JSON with object keys sorted, so equal values written by different databases compare equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A mailbox's digest from the store's own rows and bytes; the bytes are hashed as read, not trusted by name. */
async function mailboxDigest(store: Store, box: Mailbox): Promise<{ digest: string; messages: number; problems: string[] }> {
  const h = createHash('sha256');
  const problems: string[] = [];
  h.update(canonicalJson([box.name, box.specialUse, box.subscribed, box.uidValidity, box.uidNext, box.highestModseq, box.messages, box.unseen, box.size]));
  let n = 0;
  for await (const m of messagesOf(store, box.id)) {
    const content = await store.messages.content(box.id, m.uid);
    const actual = sha256(content);
    if (actual !== m.blobId) problems.push(`UID ${m.uid}: content hash ${actual} is not ${m.blobId}`);
    h.update(canonicalJson([m.uid, m.modseq, m.createdModseq, m.flags, m.internalDate, m.size, actual, m.structure, m.idempotencyKey]));
    n++;
  }
  h.update(canonicalJson(await expungesOf(store, box.id)));
  return { digest: h.digest('hex'), messages: n, problems };
}

function entryView(e: QueueEntry, now: number): unknown {
  const leased = e.leaseExpiresAt !== null;
  return {
    id: e.id,
    sender: e.sender,
    meta: e.meta,
    blobId: e.blobId,
    size: e.size,
    receivedAt: e.receivedAt,
    state: e.state,
    dueAt: leased ? Math.min(e.dueAt, now) : e.dueAt,
    attempts: e.attempts,
    recipients: e.recipients.map(({ id: _id, ...r }) => r),
  };
}

async function queueDigest(store: Store, now: number): Promise<{ digest: string; entries: number; recipients: number; views: Map<string, string>; problems: string[] }> {
  const h = createHash('sha256');
  const views = new Map<string, string>();
  const problems: string[] = [];
  let recipients = 0;
  const entries = await store.queue.list();
  for (const e of entries) {
    const actual = sha256(await store.queue.content(e.id));
    if (actual !== e.blobId) problems.push(`queue entry ${e.id}: content hash ${actual} is not ${e.blobId}`);
    const view = canonicalJson(entryView(e, now));
    views.set(e.id, view);
    h.update(view);
    recipients += e.recipients.length;
  }
  return { digest: h.digest('hex'), entries: entries.length, recipients, views, problems };
}

/**
 * Reads both stores again and compares directory, every mailbox (attributes, message rows, content
 * hashes, expunge records) and the queue. `now` must be the copy's, for the due times of dropped leases.
 */
export async function verifyCopy(source: Store, target: Store, options: { now: number; limit?: number }): Promise<VerifyReport> {
  const limit = options.limit ?? 50;
  const all: string[] = [];
  const note = (line: string) => all.push(line);

  // directory
  const [sd, td] = await Promise.all([source.directory.listDomains(), target.directory.listDomains()]);
  const domainsOk = canonicalJson(sd.map((d) => d.name)) === canonicalJson(td.map((d) => d.name));
  if (!domainsOk) note(`domains differ: source ${sd.map((d) => d.name).join(',')} / target ${td.map((d) => d.name).join(',')}`);
  const [sa, ta] = await Promise.all([source.directory.listAccounts(), target.directory.listAccounts()]);
  const byAddress = new Map(ta.map((a) => [a.address, a]));
  let accountsOk = sa.length === ta.length;
  if (!accountsOk) note(`accounts: ${sa.length} in the source, ${ta.length} in the target`);
  for (const a of sa) {
    const t = byAddress.get(a.address);
    if (!t) note(`account ${a.address} is missing in the target`);
    else if (t.passwordHash !== a.passwordHash || t.quotaBytes !== a.quotaBytes) note(`account ${a.address}: password hash or quota differ`);
    else continue;
    accountsOk = false;
  }
  const [sl, tl] = await Promise.all([source.directory.listAliases(), target.directory.listAliases()]);
  const aliasesOk = canonicalJson(sl) === canonicalJson(tl);
  if (!aliasesOk) note(`aliases differ (${sl.length} in the source, ${tl.length} in the target)`);

  // mailboxes
  const mailboxes: MailboxCheck[] = [];
  for (const a of sa) {
    const t = byAddress.get(a.address);
    const sboxes = await source.mailboxes.list(a.id);
    const tboxes = t ? await target.mailboxes.list(t.id) : [];
    const tByName = new Map(tboxes.map((b) => [b.name, b]));
    for (const extra of tboxes.filter((b) => !sboxes.some((s) => s.name === b.name))) note(`${a.address}/${extra.name}: only in the target`);
    for (const sbox of sboxes) {
      const tbox = tByName.get(sbox.name);
      const s = await mailboxDigest(source, sbox);
      for (const p of s.problems) note(`${a.address}/${sbox.name} (source) ${p}`);
      let ok = s.problems.length === 0;
      if (!tbox) {
        note(`${a.address}/${sbox.name}: missing in the target`);
        ok = false;
      } else {
        const d = await mailboxDigest(target, tbox);
        for (const p of d.problems) note(`${a.address}/${sbox.name} (target) ${p}`);
        if (tbox.uidValidity !== sbox.uidValidity) note(`${a.address}/${sbox.name}: UIDVALIDITY ${tbox.uidValidity} is not ${sbox.uidValidity}`);
        if (d.messages !== s.messages) note(`${a.address}/${sbox.name}: ${d.messages} messages in the target, ${s.messages} in the source`);
        else if (d.digest !== s.digest) note(`${a.address}/${sbox.name}: messages, flags, MODSEQs or counters differ (digest ${d.digest.slice(0, 12)} is not ${s.digest.slice(0, 12)})`);
        ok = ok && d.problems.length === 0 && d.digest === s.digest && tbox.uidValidity === sbox.uidValidity;
      }
      mailboxes.push({ account: a.address, mailbox: sbox.name, uidValidity: sbox.uidValidity, messages: s.messages, digest: s.digest, ok });
    }
  }

  // queue
  const sq = await queueDigest(source, options.now);
  const tq = await queueDigest(target, options.now);
  for (const p of [...sq.problems.map((x) => `(source) ${x}`), ...tq.problems.map((x) => `(target) ${x}`)]) note(p);
  for (const [id, view] of sq.views) {
    const other = tq.views.get(id);
    if (other === undefined) note(`queue entry ${id} is missing in the target`);
    else if (other !== view) note(`queue entry ${id}: sender, recipients, states or times differ`);
  }
  for (const id of tq.views.keys()) if (!sq.views.has(id)) note(`queue entry ${id}: only in the target`);
  const queueOk = sq.digest === tq.digest && sq.problems.length === 0 && tq.problems.length === 0;
  if (!queueOk && all.length === 0) note('queue digests differ');

  const mismatches = all.length > limit ? [...all.slice(0, limit), `… and ${all.length - limit} more`] : all;
  return {
    ok: all.length === 0,
    mismatches,
    mailboxes,
    queue: { entries: sq.entries, recipients: sq.recipients, digest: sq.digest, ok: queueOk },
    directory: { domains: sd.length, accounts: sa.length, aliases: sl.length, ok: domainsOk && accountsOk && aliasesOk },
  };
}
