/*
 * Background upkeep of a store: unreferenced blobs (a delivered queue entry's bytes, an expunged
 * message's) are collected after a grace period, so a blob written just before the commit that
 * references it is never taken. Safe to run on every node: collect is transactional on both backends.
 * Errors are logged and the next round tries again.
 */
import type { Logger } from '../log/logger.js';
import type { Clock, Store } from './api.js';
import { systemClock } from './api.js';

export interface CollectorOptions {
  intervalMs?: number;
  graceMs?: number;
  clock?: Clock;
}

export function startBlobCollector(store: Store, logger: Logger, options: CollectorOptions = {}): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? 10 * 60_000;
  const graceMs = options.graceMs ?? 60 * 60_000;
  const clock = options.clock ?? systemClock;
  let running: Promise<void> | null = null;
  const round = (): void => {
    if (running) return;
    running = store.blobs
      .collect(clock.now(), graceMs)
      .then((removed) => {
        if (removed > 0) logger.info({ removed }, `blob collection: ${removed} unreferenced blobs removed`);
      })
      .catch((err: unknown) => logger.warn({ err }, 'blob collection failed; retrying at the next round'))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(round, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
