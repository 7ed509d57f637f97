/*
 * The main-thread half of the embedded BulkStore: checks the rows (bulk-common.ts) before they cross to
 * the worker, and makes contents above INLINE_BLOB_LIMIT durable files before the worker commits the rows
 * that name them, as append does. Errors are StoreErrors.
 */
import type { BulkStore } from '../../api.js';
import { blobPart, checkBulkMailbox, checkBulkMessages, checkBulkQueueEntry } from '../../bulk-common.js';
import { sha256 } from '../../common.js';
import { isStoreError, StoreError } from '../../errors.js';
import { asBuffer, BLOB_FILE_MISSING } from './blobs.js';
import type { BlobFiles } from './blobfiles.js';
import type { Remote } from './rpc.js';

/** Runs `commit` after writing the large contents as files; once more if a concurrent collect removed one. */
async function withFiles<T>(files: BlobFiles, large: { content: Buffer; id: string }[], commit: () => Promise<T>): Promise<T> {
  for (const l of large) await files.write(l.content, l.id);
  try {
    return await commit();
  } catch (err) {
    if (!isStoreError(err, 'not_found') || !err.message.startsWith(BLOB_FILE_MISSING)) throw err;
    for (const l of large) await files.write(l.content, l.id);
    return commit();
  }
}

export function embeddedBulk(ops: Remote<'bulk'>, mailboxes: Remote<'mailboxes'>, files: BlobFiles, inlineLimit: number): BulkStore {
  return {
    exportMessages: async (mailboxId, afterUid, limit) =>
      (await ops.exportMessages(mailboxId, afterUid, limit)).map((m) => (m.prefix ? { ...m, prefix: asBuffer(m.prefix) } : m)),
    importMailbox: async (accountId, mailbox) => ops.importMailbox(accountId, checkBulkMailbox(mailbox)),
    importMessages: async (mailboxId, messages) => {
      if (messages.length === 0) return;
      const box = await mailboxes.getById(mailboxId);
      if (!box) throw new StoreError('not_found', `mailbox ${mailboxId} not found`);
      const flags = checkBulkMessages(messages, box);
      const blobs = messages.map(blobPart);
      const large = messages.flatMap((m, i) => (blobs[i]!.length > inlineLimit ? [{ content: blobs[i]!, id: m.blobId }] : []));
      const rows = messages.map(({ content: _, ...m }, i) => ({
        ...m,
        prefix: m.prefix ?? null,
        flags: flags[i] ?? [],
        inline: blobs[i]!.length > inlineLimit ? null : blobs[i]!,
      }));
      await withFiles(files, large, () => ops.importMessages(mailboxId, rows, Date.now()));
    },
    importQueueEntry: async (entry, content) => {
      checkBulkQueueEntry(entry);
      if (!Buffer.isBuffer(content)) throw new StoreError('invalid', `queue entry ${entry.id}: no content`);
      const id = sha256(content);
      const large = content.length > inlineLimit ? [{ content, id }] : [];
      await withFiles(files, large, () => ops.importQueueEntry(entry, id, content.length, large.length > 0 ? null : content, Date.now()));
    },
  };
}
