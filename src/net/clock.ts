/*
 * Time for the protocol servers, injectable so tests of timeouts and auth delays run without sleeping.
 * `schedule` returns a cancel function. System timers are unref'd: an open socket keeps the process
 * alive, a timer alone must not (a stopped server exits at once). Never throws.
 */

export interface ServerClock {
  /** milliseconds since the epoch */
  now(): number;
  /** runs `fn` once after `ms`; the returned function cancels it (idempotent) */
  schedule(ms: number, fn: () => void): () => void;
}

export const systemClock: ServerClock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

export function sleep(clock: ServerClock, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => clock.schedule(ms, resolve));
}

/** A clock for tests: time moves only when `advance` is called. */
export class ManualClock implements ServerClock {
  private time: number;
  private timers: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;

  constructor(start = Date.UTC(2024, 2, 5, 9, 4, 5)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  schedule(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + ms, fn, seq: this.seq++ };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = target;
  }

  get pending(): number {
    return this.timers.length;
  }
}
