/*
 * The embedded backend (default, one node): SQLite in a worker thread, committing in groups.
 * Blobs up to INLINE_BLOB_LIMIT travel inside the commit (one WAL fsync for the whole group); larger
 * ones are content-addressed files written and fsynced here, in the I/O pool, before the worker commits
 * the row that names them. Change signals stay in this process.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type {
  AppendResult,
  BlobId,
  BlobStore,
  BulkStore,
  ChangeFeed,
  ClusterStore,
  DirectoryStore,
  MailboxSignal,
  MailboxStore,
  MapStore,
  MessageStore,
  NewMessage,
  NewQueueMessage,
  QueueStore,
  Store,
} from '../../api.js';
import { appendPrefix, newQueueId, sha256, withPrefix } from '../../common.js';
import { isStoreError, StoreError } from '../../errors.js';
import { asBuffer, BLOB_FILE_MISSING } from './blobs.js';
import { BlobFiles } from './blobfiles.js';
import { embeddedBulk } from './bulk-client.js';
import { embeddedCluster } from './cluster-client.js';
import { ASK_READER, InlineReader } from './inline-reads.js';
import { READ_OPS } from './ops.js';
import { remote, WorkerClient } from './rpc.js';
import type { InFile } from './messages.js';
import type { WorkerInit } from './worker.js';

/**
 * Measured on the development machines: a new file + fsync per message caps near 1,800 blobs/s even with
 * 64 writers, while inline blobs ride the group commit. SQLite stores blobs of this size efficiently.
 */
export const INLINE_BLOB_LIMIT = 128 * 1024;

export async function openEmbeddedStore(config: { path: string }): Promise<Store> {
  const root = resolve(config.path);
  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    throw new StoreError('unavailable', `cannot create store directory ${root}: ${(err as Error).message}`, { cause: err });
  }
  const files = await BlobFiles.open(join(root, 'blobs'));
  const events = new EventEmitter().setMaxListeners(0);
  const init = { dbPath: join(root, 'cartero.sqlite'), blobRoot: files.root };
  const signal = (mailboxId: number, highestModseq: number) => events.emit(String(mailboxId), { mailboxId, highestModseq } satisfies MailboxSignal);
  const writer = await startWorker({ ...init, reader: false }, signal);
  try {
    const reader = await startWorker({ ...init, reader: true }, signal);
    // opened after the writer, which creates the database and migrates it
    return new EmbeddedStore(writer, reader, InlineReader.open(init.dbPath), files, events);
  } catch (err) {
    await writer.close();
    throw err;
  }
}

/** A worker that did not come up (see READY_TIMEOUT_MS in rpc.ts) is started once more before giving up. */
async function startWorker(init: WorkerInit, signal: (mailboxId: number, highestModseq: number) => void): Promise<WorkerClient> {
  try {
    return await WorkerClient.start(init, signal);
  } catch (err) {
    if (!isStoreError(err, 'unavailable') || !/not ready after/.test(err.message)) throw err;
    return WorkerClient.start(init, signal);
  }
}

/**
 * Runs a commit that references new content: inline for small blobs; otherwise the file is made durable
 * first and rewritten once if a concurrent collect removed it before the commit.
 */
async function withContent<T>(files: BlobFiles, content: Buffer, id: BlobId, fn: (inline: Buffer | null) => Promise<T>): Promise<T> {
  if (content.length <= INLINE_BLOB_LIMIT) return fn(content);
  await files.write(content, id);
  try {
    return await fn(null);
  } catch (err) {
    if (!isStoreError(err, 'not_found') || !err.message.startsWith(BLOB_FILE_MISSING)) throw err;
    await files.write(content, id);
    return fn(null);
  }
}

class EmbeddedStore implements Store {
  readonly backend = 'embedded' as const;
  readonly directory: DirectoryStore;
  readonly mailboxes: MailboxStore;
  readonly queue: QueueStore;
  readonly messages: MessageStore;
  readonly changes: ChangeFeed;
  readonly blobs: BlobStore;
  readonly cluster: ClusterStore;
  readonly bulk: BulkStore;
  readonly maps: MapStore;

  private readonly call: (op: string, args: unknown[]) => Promise<unknown>;

  constructor(
    private readonly writer: WorkerClient,
    private readonly reader: WorkerClient,
    private readonly inline: InlineReader | null,
    private readonly files: BlobFiles,
    events: EventEmitter,
  ) {
    this.call = (op, args) => {
      if (!READ_OPS.has(op)) return writer.call(op, args);
      const answered = inline ? inline.answer(op, args) : ASK_READER;
      return answered === ASK_READER ? reader.call(op, args) : answered;
    };
    this.directory = remote(this.call, 'directory');
    this.mailboxes = remote(this.call, 'mailboxes');
    this.cluster = embeddedCluster(remote(this.call, 'cluster'));
    this.maps = remote(this.call, 'maps');
    this.bulk = embeddedBulk(remote(this.call, 'bulk'), remote(this.call, 'mailboxes'), files, INLINE_BLOB_LIMIT);
    const q = remote(this.call, 'queue');
    const m = remote(this.call, 'messages');
    const mScan = remote((op, args) => reader.call(op, args), 'messages');
    const b = remote(this.call, 'blobs');

    this.queue = {
      filesAtCommit: true,
      commit: async (msg: NewQueueMessage, now: number) => {
        const id = newQueueId(now);
        const row = {
          id, sender: msg.sender, recipients: msg.recipients, size: msg.content.length, meta: msg.meta ?? {}, hold: msg.hold ?? false, dueAt: msg.dueAt ?? now, now,
          ...(msg.receipts ? { receipts: msg.receipts } : {}),
          ...(msg.file && msg.file.length > 0 ? { file: msg.file } : {}),
        };
        // Inline content is hashed by the writer (off the event loop); a file needs its name first.
        const blobId = msg.content.length <= INLINE_BLOB_LIMIT ? null : sha256(msg.content);
        const done = blobId === null
          ? await q.commit({ ...row, blobId: null, inline: msg.content })
          : await withContent(files, msg.content, blobId, (inline) => q.commit({ ...row, blobId, inline }));
        // all duplicates: the id is the earlier entry's (a large content's file is left to blob collection)
        return { id: done.created ? id : done.duplicates!.of, ...done };
      },
      lease: (r) => q.lease(r),
      renew: (id, token, leaseMs, now) => q.renew(id, token, leaseMs, now),
      complete: (id, token, outcomes, now) => q.complete(id, token, outcomes, now),
      hold: (id) => q.hold(id),
      release: (id, now) => q.release(id, now),
      requeue: (id, now) => q.requeue(id, now),
      remove: (id) => q.remove(id),
      get: (id) => q.get(id),
      list: (filter) => q.list(filter),
      counts: (now) => q.counts(now),
      flushDomain: (domain, now, options) => q.flushDomain(domain, now, options ?? {}),
      pause: (domain, by, now) => q.pause(domain, by, now),
      resume: (domain, now) => q.resume(domain, now),
      pauses: () => q.pauses(),
      recordAdmin: (record) => q.recordAdmin(record),
      pruneReceipts: (before) => q.pruneReceipts(before),
      adminLog: (filter) => q.adminLog(filter ?? {}),
      content: async (id) => {
        const found = await q.contentOf(id);
        if (found.content === 'file') return this.files.read(found.blobId);
        // checked against its id by the reader
        return asBuffer(found.content);
      },
    };

    this.messages = {
      append: async (mailboxId: number, msg: NewMessage, now: number): Promise<AppendResult> => {
        const base = {
          flags: msg.flags ?? [],
          internalDate: msg.internalDate ?? now,
          idempotencyKey: msg.idempotencyKey ?? null,
          deliveryDigest: msg.deliveryDigest ?? null,
          structure: msg.structure ?? null,
        };
        const prefix = appendPrefix(msg);
        if (msg.content) {
          const content = msg.content;
          const blobId = sha256(content);
          return withContent(files, content, blobId, (inline) =>
            m.append(mailboxId, { ...base, blobId, size: content.length, fresh: true, inline, prefix: null }, now),
          );
        }
        if (!msg.blobId) throw new StoreError('invalid', 'append needs content or blobId');
        return m.append(mailboxId, { ...base, blobId: msg.blobId, size: null, fresh: false, inline: null, prefix }, now);
      },
      list: (mailboxId, uids) => m.list(mailboxId, uids),
      index: (mailboxId, uids) => m.index(mailboxId, uids),
      structures: (mailboxId, uids) => m.structures(mailboxId, uids),
      setFlags: (mailboxId, uids, op, flags, options) => m.setFlags(mailboxId, uids, op, flags, options),
      expunge: (mailboxId, uids) => m.expunge(mailboxId, uids),
      copy: (from, uids, to, now) => m.copy(from, uids, to, now),
      move: (from, uids, to, now) => m.move(from, uids, to, now),
      content: async (mailboxId, uid) => {
        const found = await m.contentOf(mailboxId, uid);
        // the blob's bytes were checked by the reader, or are checked by files.read
        return 'file' in found ? this.messageInFile(found) : asBuffer(found.content);
      },
      quota: (accountId) => m.quota(accountId),
      pruneDigests: (before) => m.pruneDigests(before),
      // IMAP read paths (SELECT, FETCH of bodies)
      flagSets: (mailboxId) => m.flagSets(mailboxId),
      compactIndex: (mailboxId, fromUid) => m.compactIndex(mailboxId, fromUid),
      contents: async (mailboxId, uids, purpose = 'answer') => {
        // a scan reads on the reader thread, the next batch while the caller works on this one
        const found = await (purpose === 'scan' ? mScan : m).contentsOf(mailboxId, [...uids]);
        // inline bytes are ready (checked where they were read, inlineIntact): no promise per message of
        // a batch; only the messages whose blob is a file wait for it
        const out = found.map((c) => (c === null || 'file' in c ? null : asBuffer(c)));
        const inFiles = found.flatMap((c, i) => (c !== null && 'file' in c ? [{ i, c }] : []));
        await Promise.all(
          inFiles.map(async ({ i, c }) => {
            try {
              out[i] = await this.messageInFile(c);
            } catch (err) {
              // a blob file removed after the row was read: the message went away meanwhile
              if (!isStoreError(err, 'not_found')) throw err;
            }
          }),
        );
        return out;
      },
    };

    this.changes = {
      since: (mailboxId, modseq) => m.since(mailboxId, modseq),
      subscribe: (mailboxId, listener) => {
        events.on(String(mailboxId), listener);
        return () => events.off(String(mailboxId), listener);
      },
    };

    this.blobs = {
      put: async (content) => {
        const id = sha256(content);
        await withContent(files, content, id, (inline) => b.register(id, content.length, Date.now(), inline));
        return { id, size: content.length };
      },
      get: (id) => this.readBlob(id),
      collect: async (now, graceMs) => b.collect(now, graceMs, await this.files.filesOlderThan(now - graceMs)),
      refs: (id) => b.refs(id),
    };
  }

  /** A message whose blob is a file: its prefix, then the file's bytes (checked by files.read). */
  private async messageInFile(f: InFile): Promise<Buffer> {
    return asBuffer(withPrefix(f.prefix, await this.files.read(f.file)));
  }

  private async readBlob(id: BlobId): Promise<Buffer> {
    const found = await remote(this.call, 'blobs').fetch(id);
    if (found === null) throw new StoreError('not_found', `blob ${id} not found`);
    if (found === 'file') return this.files.read(id);
    // blobs.fetch checked the inline bytes against the id in the reader
    return asBuffer(found);
  }

  migrate(): Promise<number[]> {
    return remote(this.call, 'admin').migrate();
  }

  ping(): Promise<void> {
    return remote(this.call, 'admin').ping();
  }

  async close(): Promise<void> {
    this.inline?.close();
    await Promise.all([this.reader.close(), this.writer.close()]);
  }
}
