/*
 * Sessions per logged-in user of one server process (Dovecot's mail_max_userip_connections, per user
 * rather than per user and address): one account whose password leaked cannot open thousands of
 * sessions from a botnet, which the per-address limit of the listeners cannot stop.
 */
export class UserSlots {
  private readonly held = new Map<string, number>();

  /** Takes a slot for `user` unless `limit` are taken; false when over the limit. */
  acquire(user: string, limit: number): boolean {
    const key = user.toLowerCase();
    const n = this.held.get(key) ?? 0;
    if (n >= limit) return false;
    this.held.set(key, n + 1);
    return true;
  }

  release(user: string): void {
    const key = user.toLowerCase();
    const n = this.held.get(key) ?? 0;
    if (n <= 1) this.held.delete(key);
    else this.held.set(key, n - 1);
  }

  count(user: string): number {
    return this.held.get(user.toLowerCase()) ?? 0;
  }
}
