/*
 * Retry timing in Postfix's manner: the next attempt waits as long as the message has already been in
 * the queue, clamped between minimal_backoff and maximal_backoff (so waits roughly double), and never
 * past the queue lifetime, where deferred recipients are given up. Pure; times in milliseconds.
 */

export interface BackoffSettings {
  minimalMs: number;
  maximalMs: number;
  lifetimeMs: number;
}

export function retryAt(receivedAt: number, now: number, s: BackoffSettings): number {
  const age = Math.max(0, now - receivedAt);
  const wait = Math.min(Math.max(age, s.minimalMs), s.maximalMs);
  // The last retry lands on the lifetime mark, so a dead destination is given up on time.
  return Math.max(now + 1, Math.min(now + wait, receivedAt + s.lifetimeMs));
}

export function expired(receivedAt: number, now: number, s: BackoffSettings): boolean {
  return now - receivedAt >= s.lifetimeMs;
}
