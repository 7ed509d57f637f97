/*
 * One POP3 session per maildrop at a time (RFC 1939 §8: the server acquires an exclusive lock on the
 * maildrop when entering TRANSACTION). The session sees only the MaildropLocks interface; this module's
 * LocalMaildropLocks is a lock map inside one process, which is enough for one node. A cluster on
 * PostgreSQL needs a lock every node sees: a session-level advisory lock (pg_try_advisory_lock on the
 * mailbox id, held on a dedicated connection until release) can implement the same interface later
 * without touching the session. Never throws for a lock that is held: acquire answers null.
 */

export interface MaildropLock {
  /** Idempotent. */
  release(): Promise<void>;
}

export interface MaildropLocks {
  /** The lock of this mailbox, or null when another session holds it. */
  acquire(mailboxId: number): Promise<MaildropLock | null>;
}

export class LocalMaildropLocks implements MaildropLocks {
  private readonly held = new Set<number>();

  acquire(mailboxId: number): Promise<MaildropLock | null> {
    if (this.held.has(mailboxId)) return Promise.resolve(null);
    this.held.add(mailboxId);
    let released = false;
    return Promise.resolve({
      release: () => {
        if (!released) {
          released = true;
          this.held.delete(mailboxId);
        }
        return Promise.resolve();
      },
    });
  }

  /** mailboxes locked now (tests, stats) */
  get size(): number {
    return this.held.size;
  }
}
