/*
 * The bytes of queue entries this node has just committed, kept for the first delivery attempt so the
 * scheduler does not read back from the store what it handed to it a moment ago (one store round trip
 * per message, and on the embedded store a thread hand-off each way). Bounded in bytes and age; an entry
 * another node delivers, or one retried later, is simply read from the store as before.
 */
import type { Clock } from '../store/index.js';

export interface FreshContentLimits {
  /** bytes kept in all */
  maxBytes: number;
  /** a message larger than this is never kept */
  maxOne: number;
  /** kept at most this long */
  maxAgeMs: number;
}

export const DEFAULT_FRESH_LIMITS: FreshContentLimits = { maxBytes: 32 * 1024 * 1024, maxOne: 1024 * 1024, maxAgeMs: 60_000 };

export class FreshContent {
  private readonly kept = new Map<string, { content: Buffer; at: number }>();
  private bytes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: FreshContentLimits = DEFAULT_FRESH_LIMITS,
  ) {}

  offer(queueId: string, content: Buffer): void {
    this.expire();
    if (content.length > this.limits.maxOne || this.kept.has(queueId)) return;
    // oldest first: Map keeps insertion order
    for (const [id, e] of this.kept) {
      if (this.bytes + content.length <= this.limits.maxBytes) break;
      this.drop(id, e.content);
    }
    this.kept.set(queueId, { content, at: this.clock.now() });
    this.bytes += content.length;
  }

  /** The kept bytes of `queueId`, once: later attempts read the store. */
  take(queueId: string): Buffer | undefined {
    const e = this.kept.get(queueId);
    if (!e) return undefined;
    this.drop(queueId, e.content);
    return e.content;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.kept.size, bytes: this.bytes };
  }

  private expire(): void {
    const oldest = this.clock.now() - this.limits.maxAgeMs;
    for (const [id, e] of this.kept) {
      if (e.at > oldest) break;
      this.drop(id, e.content);
    }
  }

  private drop(id: string, content: Buffer): void {
    this.kept.delete(id);
    this.bytes -= content.length;
  }
}
