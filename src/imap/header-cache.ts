/*
 * Decoded, lowercased header values that SEARCH asked for, kept per server and shared by its sessions —
 * the role of Dovecot's cache file, in memory: the first SUBJECT (or FROM, or HEADER x) search of a
 * mailbox reads the messages, later searches of any session read no message at all. A message never
 * changes under its UID and a mailbox id is never reused, so entries never go stale; expunged messages'
 * entries are just never asked for again. Bounded by a number of values: the least recently filled
 * (mailbox, field) maps are dropped first.
 */

export class HeaderCache {
  /** key `${mailboxId}\0${field}` → uid → lowercased values; Map order = fill order (oldest first) */
  private readonly maps = new Map<string, Map<number, readonly string[]>>();
  private size = 0;

  constructor(private readonly maxValues = 1_000_000) {}

  get(mailboxId: number, field: string, uid: number): readonly string[] | undefined {
    return this.maps.get(keyOf(mailboxId, field))?.get(uid);
  }

  set(mailboxId: number, field: string, uid: number, values: readonly string[]): void {
    if (this.maxValues <= 0) return;
    const key = keyOf(mailboxId, field);
    let map = this.maps.get(key);
    if (!map) {
      map = new Map();
      this.maps.set(key, map);
    }
    if (map.has(uid)) return;
    map.set(uid, values.map((v) => v.toLowerCase()));
    this.size++;
    while (this.size > this.maxValues) {
      const [oldest, old] = this.maps.entries().next().value as [string, Map<number, readonly string[]>];
      if (old === map) {
        // the map being filled is the oldest: drop its oldest entries rather than all of it
        old.delete(old.keys().next().value as number);
        this.size--;
        continue;
      }
      this.maps.delete(oldest);
      this.size -= old.size;
    }
  }

  /** number of cached values (tests, stats) */
  get values(): number {
    return this.size;
  }
}

function keyOf(mailboxId: number, field: string): string {
  return `${mailboxId}\0${field.toLowerCase()}`;
}
