/*
 * Opens the postgres backend: one pool, one change feed, and the parts of the Store API on top.
 * Owns the Store's lifecycle (migrate, ping, close). Never connects at open: the first query does, so a
 * node can start while the database fails over. Errors are StoreErrors; an unreachable, read-only or
 * standby server is `unavailable`.
 */
import type { BlobStore, BulkStore, ChangeFeed, ClusterStore, DirectoryStore, MailboxStore, MapStore, MessageStore, QueueStore, Store } from '../../api.js';
import { StoreError } from '../../errors.js';
import { PgBlobs } from './blobs.js';
import { PgBulk } from './bulk.js';
import { PgChangeFeed } from './changes.js';
import { PgCluster } from './cluster.js';
import { Db } from './db.js';
import { PgDirectory } from './directory.js';
import { PgMailboxes } from './mailboxes.js';
import { PgMaps } from './maps.js';
import { PgMessages } from './messages.js';
import { migrate } from './migrations.js';
import { PgQueue } from './queue.js';

export interface PostgresStoreConfig {
  backend: 'postgres';
  url: string;
  pool_size?: number;
}

const DEFAULT_POOL_SIZE = 10;

class PgStore implements Store {
  readonly backend = 'postgres' as const;
  readonly directory: DirectoryStore;
  readonly queue: QueueStore;
  readonly mailboxes: MailboxStore;
  readonly messages: MessageStore;
  readonly changes: ChangeFeed;
  readonly blobs: BlobStore;
  readonly cluster: ClusterStore;
  readonly bulk: BulkStore;
  readonly maps: MapStore;
  private readonly feed: PgChangeFeed;

  constructor(private readonly db: Db) {
    this.directory = new PgDirectory(db);
    this.queue = new PgQueue(db);
    this.mailboxes = new PgMailboxes(db);
    this.messages = new PgMessages(db);
    this.feed = new PgChangeFeed(db);
    this.changes = this.feed;
    this.blobs = new PgBlobs(db);
    this.cluster = new PgCluster(db);
    this.bulk = new PgBulk(db);
    this.maps = new PgMaps(db);
  }

  migrate(): Promise<number[]> {
    return migrate(this.db);
  }

  async ping(): Promise<void> {
    const rows = await this.db.query<{ read_only: string; standby: boolean }>(
      'ping',
      "SELECT current_setting('transaction_read_only') AS read_only, pg_is_in_recovery() AS standby",
    );
    const row = rows[0];
    if (!row || row.read_only === 'on' || row.standby) {
      throw new StoreError('unavailable', 'postgres: the server is read-only (a standby or a demoted primary)');
    }
  }

  async close(): Promise<void> {
    await this.feed.close();
    await this.db.end();
  }
}

export async function openPostgresStore(config: PostgresStoreConfig): Promise<Store> {
  const poolSize = config.pool_size ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw new StoreError('invalid', `postgres: pool_size must be a positive integer, got ${poolSize}`);
  if (typeof config.url !== 'string' || config.url === '') throw new StoreError('invalid', 'postgres: url is required');
  return new PgStore(new Db({ url: config.url, poolSize }));
}
