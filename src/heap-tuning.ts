/*
 * Imported first by the server's entry points (like threadpool.ts): how far V8 lets the old generation
 * grow past what survived the last full collection before it starts the next one.
 *
 * V8 picks that factor (1.1–4) from how fast its collector is; on a server with a small heap (~18 MB
 * live) it often settled near 2.3, leaving less room than one young-generation collection may promote,
 * so marking restarted as soon as a full collection ended: 27 full collections in 100 FETCHes of 1,000
 * bodies, about a third of the server's CPU, in roughly half of the runs (the other half settled higher
 * by chance). A fixed factor of 4 (V8's own upper bound) keeps that room; the cost is at most a few
 * times the live heap of garbage between full collections. Read by V8 at each collection, so setting
 * it after start-up takes effect.
 */
import { setFlagsFromString } from 'node:v8';

// an operator's own `node --heap-growing-percent=N` (e.g. to trade CPU for memory) wins, as with threadpool.ts
if (!process.execArgv.some((a) => /^--heap[-_]growing[-_]percent/.test(a))) setFlagsFromString('--heap-growing-percent=300');
export {};
