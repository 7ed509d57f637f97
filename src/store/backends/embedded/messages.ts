/*
 * Message operations and the change log of the embedded backend. UID and MODSEQ come from the mailbox
 * row inside the single writer's transaction, so they are gap-free to readers. Counters on the mailbox
 * row are updated in the same statement batch as the messages. Message bytes are read here only on the
 * reader connection (contentOf, contentsOf), and checked (blobs.ts checkInline) before they leave. A
 * message is its row's prefix (a delivery's trace headers, or nothing) followed by its blob's bytes.
 */
import type { AppendResult, BlobId, CompactIndex, CopyResult, DeliveryDigest, FlagOperation, FlagUpdateResult, MailboxChange, MessageIndex, MessageMeta, Quota, UidRange } from '../../api.js';
import { applyFlagOperation, mergeRanges, normalizeFlags, sameFlags, storedPrefix, withPrefix } from '../../common.js';
import { StoreError } from '../../errors.js';
import { CHECKS_BY_CRC, checkInline, corrupt, inlineIntact, type InlineContent, refBlob, refExistingBlob, unrefBlob } from './blobs.js';
import { type OpContext, stmt } from './context.js';
import { markMovable } from './transfer.js';
import { mailboxRowById, type MailboxRow } from './mailboxes.js';

interface MessageRow {
  mailbox_id: number;
  uid: number;
  account_id: number;
  blob_id: string;
  size: number;
  internal_date: number;
  flags: string;
  seen: number;
  modseq: number;
  created_modseq: number;
  idempotency_key: string | null;
}

/** Every column but the structure, which only `structures` and copies read. */
const COLUMNS = 'mailbox_id, uid, account_id, blob_id, size, internal_date, flags, seen, modseq, created_modseq, idempotency_key';

/** What the main thread sends for an append: new content (inline, or a durable file) or an existing blob. */
export interface AppendRow {
  blobId: BlobId;
  size: number | null;
  fresh: boolean;
  inline: InlineContent;
  /** the message's own leading bytes (NewMessage.prefix), before the blob's */
  prefix: Uint8Array | null;
  flags: string[];
  internalDate: number;
  idempotencyKey: string | null;
  /** NewMessage.deliveryDigest */
  deliveryDigest: DeliveryDigest | null;
  structure: string | null;
}

const isSeen = (flags: readonly string[]) => (flags.some((f) => f.toLowerCase() === '\\seen') ? 1 : 0);
const isDeleted = (flags: readonly string[]) => flags.some((f) => f.toLowerCase() === '\\deleted');

const toMeta = (r: MessageRow): MessageMeta => ({
  uid: r.uid,
  modseq: r.modseq,
  flags: JSON.parse(r.flags) as string[],
  internalDate: r.internal_date,
  size: r.size,
  blobId: r.blob_id,
});

function rows(ctx: OpContext, mailboxId: number, uids?: UidRange[]): MessageRow[] {
  if (!uids) return stmt(ctx, `SELECT ${COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid`).all(mailboxId) as MessageRow[];
  const out: MessageRow[] = [];
  const q = stmt(ctx, `SELECT ${COLUMNS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`);
  for (const r of mergeRanges(uids)) out.push(...(q.all(mailboxId, r.from, r.to) as MessageRow[]));
  return out;
}

function checkQuota(ctx: OpContext, accountId: number, adding: number): void {
  const a = stmt(ctx, 'SELECT quota_bytes FROM accounts WHERE id = ?').get(accountId) as { quota_bytes: number | null } | undefined;
  if (!a || a.quota_bytes === null) return;
  const used = (stmt(ctx, 'SELECT COALESCE(SUM(size), 0) AS used FROM mailboxes WHERE account_id = ?').get(accountId) as { used: number }).used;
  if (used + adding > a.quota_bytes) throw new StoreError('over_quota', `quota of account ${accountId} exceeded`);
}

/** Inserts one message row at the mailbox's next UID and returns [uid, modseq]. */
type NewRow = Omit<MessageRow, 'mailbox_id' | 'uid' | 'account_id' | 'modseq' | 'created_modseq' | 'seen'> & {
  structure: string | null;
  prefix: Uint8Array | null;
};

function insertMessage(ctx: OpContext, mb: MailboxRow, m: NewRow): [number, number] {
  const cur = mailboxRowById(ctx, mb.id);
  const uid = cur.uid_next;
  const modseq = cur.highest_modseq + 1;
  const flags = JSON.parse(m.flags) as string[];
  const seen = isSeen(flags);
  stmt(
    ctx,
    `INSERT INTO messages (mailbox_id, uid, account_id, blob_id, size, internal_date, flags, seen, modseq, created_modseq, idempotency_key, structure, prefix)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(mb.id, uid, mb.account_id, m.blob_id, m.size, m.internal_date, m.flags, seen, modseq, modseq, m.idempotency_key, m.structure, m.prefix);
  stmt(
    ctx,
    'UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, messages = messages + 1, unseen = unseen + ?, size = size + ? WHERE id = ?',
  ).run(uid + 1, modseq, 1 - seen, m.size, mb.id);
  ctx.signal(mb.id, modseq);
  return [uid, modseq];
}

function expungeRows(ctx: OpContext, mb: MailboxRow, victims: MessageRow[]): number[] {
  let modseq = mailboxRowById(ctx, mb.id).highest_modseq;
  let unseen = 0;
  let size = 0;
  for (const v of victims) {
    modseq++;
    stmt(ctx, 'DELETE FROM messages WHERE mailbox_id = ? AND uid = ?').run(mb.id, v.uid);
    stmt(ctx, 'INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)').run(mb.id, v.uid, modseq);
    unrefBlob(ctx, v.blob_id);
    unseen += 1 - v.seen;
    size += v.size;
  }
  if (victims.length > 0) {
    stmt(ctx, 'UPDATE mailboxes SET highest_modseq = ?, messages = messages - ?, unseen = unseen - ?, size = size - ? WHERE id = ?').run(
      modseq,
      victims.length,
      unseen,
      size,
      mb.id,
    );
    ctx.signal(mb.id, modseq);
  }
  return victims.map((v) => v.uid);
}

function copyRows(ctx: OpContext, fromId: number, uids: UidRange[], toId: number, now: number): [CopyResult, MessageRow[]] {
  const src = rows(ctx, mailboxRowById(ctx, fromId).id, uids);
  const dst = mailboxRowById(ctx, toId);
  checkQuota(ctx, dst.account_id, src.reduce((n, r) => n + r.size, 0));
  const pairs: [number, number][] = [];
  const carried = stmt(ctx, 'SELECT structure, prefix FROM messages WHERE mailbox_id = ? AND uid = ?');
  for (const r of src) {
    refExistingBlob(ctx, r.blob_id);
    const { structure, prefix } = carried.get(r.mailbox_id, r.uid) as { structure: string | null; prefix: Uint8Array | null };
    const [uid] = insertMessage(ctx, dst, {
      blob_id: r.blob_id,
      size: r.size,
      internal_date: r.internal_date || now,
      flags: r.flags,
      idempotency_key: null,
      structure,
      prefix,
    });
    pairs.push([r.uid, uid]);
  }
  return [{ uidValidity: dst.uid_validity, uids: pairs }, src];
}

/**
 * contentsOf's read: contiguous UIDs (the usual sequence set) are one range scan, not one lookup each;
 * the 64-character blob id is read only where it is needed (a file, a row without CRC): ~8% of the cost
 * of a 4 KB row.
 */
const CONTENTS_IN_RANGE = `SELECT m.uid, ${CHECKS_BY_CRC ? 'CASE WHEN b.content IS NULL OR b.crc32 IS NULL THEN m.blob_id END' : 'm.blob_id'}, b.content, b.crc32, m.prefix
  FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ?`;

/**
 * The same range as one row: every message's bytes (prefix, then blob) end to end in one buffer, with
 * the UIDs, prefix lengths, blob lengths and CRCs as lists in the same order. One buffer per range
 * instead of one per message: a FETCH of 1,000 4 KB bodies made 1,000 buffers, and the young-generation
 * collections they set off (one every ~4 such FETCHes) cost ~3 ms each in the FETCH they fell into.
 * `||` and group_concat copy a blob's bytes as they are (the database is UTF-8, nothing is transcoded;
 * each message's CRC is checked all the same). A row that is not inline with a CRC gives -1 as its
 * prefix length, and the range is read row by row instead (CONTENTS_IN_RANGE).
 */
const CONTENTS_PACKED = `SELECT group_concat(m.uid), group_concat(CASE WHEN b.content IS NULL OR b.crc32 IS NULL THEN -1 ELSE coalesce(length(m.prefix), 0) END),
  group_concat(coalesce(length(b.content), 0)), group_concat(coalesce(b.crc32, 0)), CAST(group_concat(coalesce(m.prefix, x'') || b.content, x'') AS BLOB)
  FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ?`;

/** A message whose blob is a file: the caller reads (and checks) the file and puts the prefix before it. */
export interface InFile {
  file: BlobId;
  prefix: Uint8Array | null;
}

/**
 * `contentsOf` for several messages, per UID asked: its bytes (checked: inlineIntact), where its blob's
 * bytes are in a file, or null when the message is gone.
 */
export type MessageContents = (Uint8Array | InFile | null)[];

/** contentsOf for one range from CONTENTS_PACKED; false (nothing added) when a row needs reading alone. */
function packedRange(ctx: OpContext, mailboxId: number, r: UidRange, found: Map<number, Uint8Array | InFile>): boolean {
  const row = stmt(ctx, CONTENTS_PACKED).raw(true).get(mailboxId, r.from, r.to) as [string | null, string | null, string | null, string | null, Buffer | null];
  const [uidList, prefixList, lengthList, crcList, bytes] = row;
  if (uidList === null) return true;
  const n = countOf(uidList);
  const uidsOf = numbers(uidList, n);
  const prefixes = numbers(prefixList, n);
  if (prefixes.includes(-1) || bytes === null) return false;
  const lengths = numbers(lengthList, n);
  const crcs = numbers(crcList, n);
  let at = 0;
  for (let k = 0; k < n; k++) {
    const start = at;
    const blobAt = start + prefixes[k]!;
    at = blobAt + lengths[k]!;
    if (at > bytes.length || !inlineIntact(null, bytes.subarray(blobAt, at), crcs[k]!)) throw corrupt(`message ${mailboxId}/${uidsOf[k]}`);
    found.set(uidsOf[k]!, bytes.subarray(start, at));
  }
  if (at !== bytes.length) throw corrupt(`messages ${mailboxId}/${r.from}:${r.to}`);
  // every view into the buffer is in this answer: on the reader thread it moves to the session whole
  markMovable(bytes);
  return true;
}

/** contentsOf for one range, row by row (CONTENTS_IN_RANGE). */
function rangeByRows(ctx: OpContext, mailboxId: number, r: UidRange, found: Map<number, Uint8Array | InFile>): void {
  const q = stmt(ctx, CONTENTS_IN_RANGE).raw(true);
  for (const [uid, id, content, crc, prefix] of q.iterate(mailboxId, r.from, r.to) as IterableIterator<
    [number, BlobId | null, Buffer | null, number | null, Uint8Array | null]
  >) {
    if (content !== null && !inlineIntact(id, content, crc)) throw corrupt(`message ${mailboxId}/${uid}`);
    // a row with no inline content always has its id read
    found.set(uid, content !== null ? withPrefix(prefix, content) : { file: id!, prefix });
  }
}

/** Items in a group_concat list (commas + 1). */
function countOf(list: string): number {
  let n = 1;
  for (let i = list.indexOf(','); i >= 0; i = list.indexOf(',', i + 1)) n++;
  return n;
}

/** A group_concat of integers as numbers (`n` of them); anything but digits and '-' goes through Number. */
function numbers(text: string | null, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 0 || text === null) return out;
  let k = 0;
  let v = 0;
  let neg = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44) {
      out[k++] = neg ? -v : v;
      v = 0;
      neg = false;
    } else if (c >= 48 && c <= 57) v = v * 10 + (c - 48);
    else if (c === 45 && v === 0) neg = true;
    else return Float64Array.from(text.split(','), Number);
  }
  out[k] = neg ? -v : v;
  return out;
}

/**
 * group_concat follows the scan, which is UID order on messages_view; should a plan ever scan in
 * another order, the columns are put in UID order here rather than trusted.
 */
function inUidOrder(ix: CompactIndex): CompactIndex {
  const n = ix.uids.length;
  let sorted = true;
  for (let k = 1; k < n && sorted; k++) if (ix.uids[k]! <= ix.uids[k - 1]!) sorted = false;
  if (sorted) return ix;
  const order = Array.from({ length: n }, (_, k) => k).sort((a, b) => ix.uids[a]! - ix.uids[b]!);
  const pick = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
    const out = make(n);
    for (let k = 0; k < n; k++) out[k] = a[order[k]!]!;
    return out;
  };
  const f64 = (m: number) => new Float64Array(m);
  return {
    uids: pick(ix.uids, f64),
    modseqs: pick(ix.modseqs, f64),
    internalDates: pick(ix.internalDates, f64),
    sizes: pick(ix.sizes, f64),
    flags: pick(ix.flags, (m) => new Uint32Array(m)),
    flagSets: ix.flagSets,
    highestModseq: ix.highestModseq,
  };
}

/**
 * Records the digest of a delivery to the account; false (nothing written) when an exact copy was
 * delivered at or after `since`. One statement, the same as the postgres backend's. In the append's
 * transaction: a failed append records nothing.
 */
function claimDigest(ctx: OpContext, accountId: number, d: DeliveryDigest, now: number): boolean {
  const claimed = stmt(
    ctx,
    `INSERT INTO delivery_digests (account_id, digest, created_at) VALUES (?, ?, ?)
     ON CONFLICT (account_id, digest) DO UPDATE SET created_at = excluded.created_at WHERE delivery_digests.created_at < ?
     RETURNING 1`,
  ).get(accountId, d.digest, now, d.since);
  return claimed !== undefined;
}

/** messages.append, also used by a queue commit that files recipients itself (queue.ts). */
export function appendRow(ctx: OpContext, mailboxId: number, m: AppendRow, now: number): AppendResult {
  const mb = mailboxRowById(ctx, mailboxId);
  if (m.idempotencyKey !== null) {
    const dup = stmt(ctx, 'SELECT mailbox_id, uid, modseq FROM messages WHERE account_id = ? AND idempotency_key = ?').get(
      mb.account_id,
      m.idempotencyKey,
    ) as { mailbox_id: number; uid: number; modseq: number } | undefined;
    if (dup) return { uid: dup.uid, modseq: dup.modseq, uidValidity: mailboxRowById(ctx, dup.mailbox_id).uid_validity, duplicate: true };
  }
  if (m.deliveryDigest !== null && !claimDigest(ctx, mb.account_id, m.deliveryDigest, now)) {
    return { uid: 0, modseq: 0, uidValidity: 0, duplicate: true };
  }
  const prefix = storedPrefix(m.prefix);
  let size: number;
  if (m.fresh && m.size !== null) {
    size = m.size;
    checkQuota(ctx, mb.account_id, size);
    refBlob(ctx, m.blobId, size, now, m.inline);
  } else {
    size = refExistingBlob(ctx, m.blobId) + (prefix?.length ?? 0);
    checkQuota(ctx, mb.account_id, size);
  }
  const flags = JSON.stringify(normalizeFlags(m.flags));
  const [uid, modseq] = insertMessage(ctx, mb, {
    blob_id: m.blobId,
    size,
    internal_date: m.internalDate,
    flags,
    idempotency_key: m.idempotencyKey,
    structure: m.structure,
    prefix,
  });
  return { uid, modseq, uidValidity: mb.uid_validity, duplicate: false };
}

export function messageOps(ctx: OpContext) {
  return {
    append(mailboxId: number, m: AppendRow, now: number): AppendResult {
      return appendRow(ctx, mailboxId, m, now);
    },
    list(mailboxId: number, uids?: UidRange[]): MessageMeta[] {
      return rows(ctx, mailboxId, uids).map(toMeta);
    },
    index(mailboxId: number, uids?: UidRange[]): MessageIndex {
      const out: MessageIndex = { uids: [], modseqs: [], internalDates: [], sizes: [], flags: [], flagSets: [] };
      const seen = new Map<string, number>();
      const add = (r: [number, number, number, number, string]) => {
        let f = seen.get(r[4]);
        if (f === undefined) {
          f = out.flagSets.push(JSON.parse(r[4]) as string[]) - 1;
          seen.set(r[4], f);
        }
        out.uids.push(r[0]);
        out.modseqs.push(r[1]);
        out.internalDates.push(r[2]);
        out.sizes.push(r[3]);
        out.flags.push(f);
      };
      const cols = 'SELECT uid, modseq, internal_date, size, flags FROM messages WHERE mailbox_id = ?';
      if (!uids) {
        for (const r of stmt(ctx, `${cols} ORDER BY uid`).raw(true).iterate(mailboxId)) add(r as [number, number, number, number, string]);
      } else {
        const q = stmt(ctx, `${cols} AND uid BETWEEN ? AND ? ORDER BY uid`).raw(true);
        for (const range of mergeRanges(uids)) for (const r of q.iterate(mailboxId, range.from, range.to)) add(r as [number, number, number, number, string]);
      }
      return out;
    },
    structures(mailboxId: number, uids?: UidRange[]): { uid: number; structure: string | null }[] {
      if (!uids) return stmt(ctx, 'SELECT uid, structure FROM messages WHERE mailbox_id = ? ORDER BY uid').all(mailboxId) as { uid: number; structure: string | null }[];
      const q = stmt(ctx, 'SELECT uid, structure FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid');
      return mergeRanges(uids).flatMap((r) => q.all(mailboxId, r.from, r.to) as { uid: number; structure: string | null }[]);
    },
    setFlags(mailboxId: number, uids: UidRange[], op: FlagOperation, flags: string[], options: { unchangedSince?: number } = {}): FlagUpdateResult {
      const mb = mailboxRowById(ctx, mailboxId);
      const wanted = normalizeFlags(flags);
      let modseq = mb.highest_modseq;
      let unseenDelta = 0;
      const result: FlagUpdateResult = { updated: [], modified: [] };
      const upd = stmt(ctx, 'UPDATE messages SET flags = ?, seen = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?');
      for (const r of rows(ctx, mailboxId, uids)) {
        const current = JSON.parse(r.flags) as string[];
        const next = applyFlagOperation(current, op, wanted);
        if (options.unchangedSince !== undefined && r.modseq > options.unchangedSince) {
          result.modified.push(r.uid);
          continue;
        }
        if (sameFlags(current, next)) continue;
        modseq++;
        const seen = isSeen(next);
        unseenDelta += r.seen - seen;
        upd.run(JSON.stringify(next), seen, modseq, mailboxId, r.uid);
        result.updated.push({ uid: r.uid, modseq, flags: next });
      }
      if (modseq !== mb.highest_modseq) {
        stmt(ctx, 'UPDATE mailboxes SET highest_modseq = ?, unseen = unseen + ? WHERE id = ?').run(modseq, unseenDelta, mailboxId);
        ctx.signal(mailboxId, modseq);
      }
      return result;
    },
    expunge(mailboxId: number, uids?: UidRange[]): number[] {
      const mb = mailboxRowById(ctx, mailboxId);
      return expungeRows(ctx, mb, rows(ctx, mailboxId, uids).filter((r) => isDeleted(JSON.parse(r.flags) as string[])));
    },
    copy(fromId: number, uids: UidRange[], toId: number, now: number): CopyResult {
      return copyRows(ctx, fromId, uids, toId, now)[0];
    },
    move(fromId: number, uids: UidRange[], toId: number, now: number): CopyResult {
      const [result, src] = copyRows(ctx, fromId, uids, toId, now);
      expungeRows(ctx, mailboxRowById(ctx, fromId), src);
      return result;
    },
    blobOf(mailboxId: number, uid: number): BlobId {
      const r = stmt(ctx, 'SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = ?').get(mailboxId, uid) as { blob_id: string } | undefined;
      if (!r) throw new StoreError('not_found', `message ${uid} not found in mailbox ${mailboxId}`);
      return r.blob_id;
    },
    /**
     * One round trip for messages.content: the message's bytes (the blob's checked here, off the event
     * loop), or where its blob's bytes are in a file.
     */
    contentOf(mailboxId: number, uid: number): { content: Uint8Array } | InFile {
      const r = stmt(
        ctx,
        'SELECT m.blob_id AS id, b.content, b.crc32, m.prefix FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid = ?',
      ).get(mailboxId, uid) as { id: string; content: Buffer | null; crc32: number | null; prefix: Uint8Array | null } | undefined;
      if (!r) throw new StoreError('not_found', `message ${uid} not found in mailbox ${mailboxId}`);
      if (r.content === null) return { file: r.id, prefix: r.prefix };
      checkInline(r.id, r.content, r.crc32);
      return { content: withPrefix(r.prefix, r.content) };
    },
    // --- IMAP read paths: SELECT without reading every row, compact views, batched bodies ---
    flagSets(mailboxId: number): string[][] {
      // a loose index scan over messages_flags: one seek per distinct set, not one step per message
      const sets = stmt(
        ctx,
        `WITH RECURSIVE f(x) AS (
           SELECT (SELECT MIN(flags) FROM messages WHERE mailbox_id = @m)
           UNION ALL SELECT (SELECT MIN(flags) FROM messages WHERE mailbox_id = @m AND flags > f.x) FROM f WHERE f.x IS NOT NULL)
         SELECT x FROM f WHERE x IS NOT NULL`,
      )
        .pluck(true)
        .all({ m: mailboxId }) as string[];
      return sets.map((x) => JSON.parse(x) as string[]);
    },
    compactIndex(mailboxId: number, fromUid = 1): CompactIndex {
      // one read transaction: the rows and HIGHESTMODSEQ come from the same snapshot
      return ctx.db.transaction((): CompactIndex => {
        const highest = stmt(ctx, 'SELECT highest_modseq FROM mailboxes WHERE id = ?').pluck(true).get(mailboxId) as number | undefined;
        // one scan of the covering index messages_view (the rows' MIME structures are never read), each
        // column as one text: a JS array per row costs several times the scan
        const row = stmt(
          ctx,
          `SELECT count(*), group_concat(uid), group_concat(modseq), group_concat(internal_date), group_concat(size), group_concat(flags, char(10))
             FROM messages WHERE mailbox_id = ? AND uid >= ?`,
        )
          .raw(true)
          .get(mailboxId, fromUid) as [number, string | null, string | null, string | null, string | null, string | null];
        const n = row[0];
        const flagText = n > 0 ? (row[5] ?? '').split('\n') : [];
        const flags = new Uint32Array(n);
        const flagSets: string[][] = [];
        const ids = new Map<string, number>();
        for (let k = 0; k < n; k++) {
          const text = flagText[k]!;
          let id = ids.get(text);
          if (id === undefined) {
            id = flagSets.push(JSON.parse(text) as string[]) - 1;
            ids.set(text, id);
          }
          flags[k] = id;
        }
        const out: CompactIndex = {
          uids: numbers(row[1], n),
          modseqs: numbers(row[2], n),
          internalDates: numbers(row[3], n),
          sizes: numbers(row[4], n),
          flags,
          flagSets,
          highestModseq: highest ?? 0,
        };
        return inUidOrder(out);
      })();
    },
    /**
     * contents, one round trip: the inline bytes of every message found, checked (inlineIntact) here, on
     * whichever connection runs it (the event loop's, inline-reads.ts, or the reader thread's). Each is
     * the buffer SQLite's row gave, alone on its memory, so from the reader it moves to the main thread
     * without a copy (transfer.ts); packing them into one buffer cost a copy of every byte into fresh,
     * page-faulting memory.
     */
    contentsOf(mailboxId: number, uids: number[]): MessageContents {
      const found = new Map<number, Uint8Array | InFile>();
      const sorted = [...uids].sort((a, b) => a - b);
      for (const r of mergeRanges(sorted.map((u) => ({ from: u, to: u })))) {
        if (!CHECKS_BY_CRC || !packedRange(ctx, mailboxId, r, found)) rangeByRows(ctx, mailboxId, r, found);
      }
      return uids.map((uid) => found.get(uid) ?? null);
    },
    pruneDigests(before: number): number {
      return stmt(ctx, 'DELETE FROM delivery_digests WHERE created_at < ?').run(before).changes;
    },
    quota(accountId: number): Quota {
      const a = stmt(ctx, 'SELECT quota_bytes FROM accounts WHERE id = ?').get(accountId) as { quota_bytes: number | null } | undefined;
      if (!a) throw new StoreError('not_found', `account ${accountId} not found`);
      const u = stmt(ctx, 'SELECT COALESCE(SUM(size), 0) AS bytes, COALESCE(SUM(messages), 0) AS messages FROM mailboxes WHERE account_id = ?').get(
        accountId,
      ) as { bytes: number; messages: number };
      return { bytes: u.bytes, messages: u.messages, limitBytes: a.quota_bytes };
    },
    since(mailboxId: number, modseq: number): MailboxChange[] {
      const changed = stmt(ctx, 'SELECT uid, modseq, created_modseq, flags FROM messages WHERE mailbox_id = ? AND modseq > ?').all(mailboxId, modseq) as {
        uid: number;
        modseq: number;
        created_modseq: number;
        flags: string;
      }[];
      const gone = stmt(ctx, 'SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ?').all(mailboxId, modseq) as {
        uid: number;
        modseq: number;
      }[];
      const out: MailboxChange[] = [
        ...changed.map((c): MailboxChange =>
          c.created_modseq > modseq
            ? { kind: 'append', uid: c.uid, modseq: c.modseq }
            : { kind: 'flags', uid: c.uid, modseq: c.modseq, flags: JSON.parse(c.flags) as string[] },
        ),
        ...gone.map((g): MailboxChange => ({ kind: 'expunge', uid: g.uid, modseq: g.modseq })),
      ];
      return out.sort((a, b) => a.modseq - b.modseq);
    },
  };
}
