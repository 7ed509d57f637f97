/*
 * The table of synchronous operations the embedded worker can run, by namespace. The main thread
 * derives its typed client from this table (rpc.ts), so a renamed operation fails to compile.
 */
import { blobOps } from './blobs.js';
import { bulkOps } from './bulk.js';
import { clusterOps } from './cluster.js';
import type { OpContext } from './context.js';
import { directoryOps } from './directory.js';
import { mailboxOps } from './mailboxes.js';
import { mapOps } from './maps.js';
import { messageOps } from './messages.js';
import { migrate } from './migrations.js';
import { queueOps } from './queue.js';

export function createOps(ctx: OpContext) {
  const clock = () => Date.now();
  return {
    admin: {
      migrate: () => migrate(ctx.db),
      ping: () => {
        ctx.db.prepare('SELECT 1').get();
      },
    },
    directory: directoryOps(ctx, clock),
    queue: queueOps(ctx),
    mailboxes: mailboxOps(ctx, clock),
    messages: messageOps(ctx),
    blobs: blobOps(ctx),
    cluster: clusterOps(ctx),
    bulk: bulkOps(ctx),
    // lookup maps kept in the store (routing/store-map.ts)
    maps: mapOps(ctx),
  };
}

export type Ops = ReturnType<typeof createOps>;
export type Namespace = keyof Ops;

/**
 * Operations that only read. They run on a second connection in a second worker, so a lookup at RCPT
 * time never waits behind the writer's fsync; WAL gives that connection the last committed state.
 */
export const READ_OPS: ReadonlySet<string> = new Set([
  'admin.ping',
  'directory.listDomains',
  'directory.getDomain',
  'directory.getAccount',
  'directory.getAccountById',
  'directory.listAccounts',
  'directory.getAlias',
  'directory.listAliases',
  'queue.get',
  'queue.list',
  'queue.counts',
  'queue.pauses',
  'queue.adminLog',
  'queue.blobOf',
  'queue.contentOf',
  'mailboxes.get',
  'mailboxes.getById',
  'mailboxes.list',
  'messages.list',
  'messages.structures',
  'messages.index',
  'messages.blobOf',
  'messages.contentOf',
  'messages.quota',
  'messages.since',
  // IMAP read paths (SELECT, FETCH of bodies)
  'messages.flagSets',
  'messages.compactIndex',
  'messages.contentsOf',
  'blobs.refs',
  'blobs.fetch',
  'cluster.nodes',
  'cluster.leases',
  'cluster.jobHolders',
  'bulk.exportMessages',
  // lookup maps kept in the store
  'maps.get',
  'maps.list',
  'maps.generations',
  'maps.maps',
]);
