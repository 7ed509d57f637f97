/*
 * Periodic `stats` log line of a running node: event-loop delay p99 and max over the interval, RSS and
 * heap. Administrators graph it; benchmarks read it. Off unless log.stats_interval > 0.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from './logger.js';

const RESOLUTION_MS = 10;

export function startStats(logger: Logger, intervalSeconds: number): () => void {
  if (intervalSeconds <= 0) return () => {};
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  // the histogram records whole timer periods; the delay is what exceeds the resolution
  const delayMs = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  const timer = setInterval(() => {
    const mem = process.memoryUsage();
    logger.info(
      {
        event_loop_delay_p99_ms: Number(delayMs(histogram.percentile(99)).toFixed(2)),
        event_loop_delay_max_ms: Number(delayMs(histogram.max).toFixed(2)),
        rss_mb: Number((mem.rss / 2 ** 20).toFixed(1)),
        heap_mb: Number((mem.heapUsed / 2 ** 20).toFixed(1)),
      },
      'stats',
    );
    histogram.reset();
  }, intervalSeconds * 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
