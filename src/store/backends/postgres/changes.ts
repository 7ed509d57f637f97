/*
 * The mailbox change feed: since() reads the durable truth (messages and expunge tombstones);
 * subscribe() is a wake-up call carried by LISTEN/NOTIFY on one dedicated connection per Store, so a
 * write on any node wakes sessions on every node. Never treats a signal as data. When the LISTEN
 * connection drops it reconnects with backoff and then signals every subscribed mailbox once, since
 * signals sent meanwhile are lost. Listener exceptions are contained; since() errors are StoreErrors.
 */
import pg from 'pg';
import type { ChangeFeed, MailboxChange, MailboxSignal } from '../../api.js';
import { NOTIFY_CHANNEL, type Db } from './db.js';
import { validId } from './mailboxes.js';

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

type Listener = (signal: MailboxSignal) => void;

interface ChangeRow {
  uid: number;
  modseq: number;
  /** null for an expunge */
  appended: boolean | null;
  flags: string[] | null;
}

export class PgChangeFeed implements ChangeFeed {
  private readonly listeners = new Map<number, Set<Listener>>();
  private client: pg.Client | null = null;
  private started = false;
  private firstConnect: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryMs = FIRST_RETRY_MS;
  private closed = false;

  private outgoing = new Map<number, number>();
  private sending: Promise<void> | null = null;

  constructor(private readonly db: Db) {
    // Committed changes wake this node's sessions at once and the other nodes through NOTIFY.
    db.signalSink = (signals) => {
      for (const [mailboxId, highestModseq] of signals) {
        this.emit({ mailboxId, highestModseq });
        this.outgoing.set(mailboxId, Math.max(highestModseq, this.outgoing.get(mailboxId) ?? 0));
      }
      this.sending ??= this.send();
    };
  }

  /**
   * Sends the queued signals, several commits' worth in one NOTIFY transaction, one at a time. It is
   * only a wake-up, so it does not wait for a WAL flush (synchronous_commit off): losing one in a crash
   * loses nothing that since() would not find. Payloads are built from integers only.
   */
  private async send(): Promise<void> {
    while (this.outgoing.size > 0 && !this.closed) {
      const batch = [...this.outgoing];
      this.outgoing = new Map();
      const calls = batch.map(([id, modseq]) => `pg_notify('${NOTIFY_CHANNEL}', '${Math.trunc(id)}:${Math.trunc(modseq)}')`);
      await this.db
        .query('changes.notify', `BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT ${calls.join(', ')}; COMMIT`)
        .catch(() => undefined); // the database is down: sessions resync when the LISTEN connection returns
    }
    this.sending = null;
  }

  async since(mailboxId: number, modseq: number): Promise<MailboxChange[]> {
    if (!validId(mailboxId)) return [];
    // created_modseq <= modseq, so one index range on (mailbox_id, modseq) finds appends and flag changes
    const rows = await this.db.query<ChangeRow>(
      'changes.since',
      `SELECT uid, modseq, created_modseq > $2 AS appended, flags FROM messages WHERE mailbox_id = $1 AND modseq > $2
       UNION ALL
       SELECT uid, modseq, NULL, NULL FROM expunges WHERE mailbox_id = $1 AND modseq > $2
       ORDER BY modseq`,
      [mailboxId, modseq],
    );
    return rows.map((r): MailboxChange => {
      if (r.appended === null) return { kind: 'expunge', uid: r.uid, modseq: r.modseq };
      if (r.appended) return { kind: 'append', uid: r.uid, modseq: r.modseq };
      return { kind: 'flags', uid: r.uid, modseq: r.modseq, flags: r.flags ?? [] };
    });
  }

  subscribe(mailboxId: number, listener: Listener): () => void {
    let set = this.listeners.get(mailboxId);
    if (!set) this.listeners.set(mailboxId, (set = new Set()));
    set.add(listener);
    if (!this.started && !this.closed) {
      this.started = true;
      this.firstConnect = this.connect(false).finally(() => {
        this.firstConnect = null;
      });
    }
    return () => {
      const current = this.listeners.get(mailboxId);
      current?.delete(listener);
      if (current?.size === 0) this.listeners.delete(mailboxId);
    };
  }

  async close(): Promise<void> {
    await this.sending;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.firstConnect;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  /** Never rejects: a failure schedules the next attempt. */
  private async connect(reconnect: boolean): Promise<void> {
    const client = this.db.newClient('cartero-listen');
    client.on('notification', (n) => this.dispatch(n.payload));
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch {
      await client.end().catch(() => {});
      this.retry();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
    if (reconnect) await this.signalAll();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return; // a failed attempt: connect() handles it
    this.client = null;
    client.end().catch(() => {});
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect(true);
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  /** After a gap in listening: every subscriber re-checks with since(). A deleted mailbox signals 0. */
  private async signalAll(): Promise<void> {
    const ids = [...this.listeners.keys()];
    if (ids.length === 0) return;
    const current = new Map<number, number>();
    try {
      const rows = await this.db.query<{ id: number; highest_modseq: number }>(
        'changes.resync',
        'SELECT id, highest_modseq FROM mailboxes WHERE id = ANY($1::int[])',
        [ids.filter(validId)],
      );
      for (const r of rows) current.set(r.id, r.highest_modseq);
    } catch {
      // the wake-up matters more than the number in it
    }
    for (const id of ids) this.emit({ mailboxId: id, highestModseq: current.get(id) ?? 0 });
  }

  private dispatch(payload: string | undefined): void {
    const m = /^(\d+):(\d+)$/.exec(payload ?? '');
    if (!m) return;
    this.emit({ mailboxId: Number(m[1]), highestModseq: Number(m[2]) });
  }

  private emit(signal: MailboxSignal): void {
    const set = this.listeners.get(signal.mailboxId);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(signal);
      } catch {
        // one broken session must not silence the others
      }
    }
  }
}
