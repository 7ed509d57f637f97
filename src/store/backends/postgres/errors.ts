/*
 * Maps driver and server failures of the postgres backend to StoreError kinds.
 * Owns the table of SQLSTATE codes and socket errors; never decides retries (db.ts does) and never
 * swallows an error: everything leaves as a StoreError with the original as `cause`.
 * Unknown failures become `unavailable`: a temporary failure makes SMTP answer 4xx, which is safe.
 */
import { StoreError, type StoreErrorKind } from '../../errors.js';

/** SQLSTATEs after which the same statement may succeed on a new connection or another server. */
const UNAVAILABLE_STATES = new Set([
  '25006', // read_only_sql_transaction: we reached a standby or a demoted primary
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '57014', // query_canceled (statement timeout)
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '40001', // serialization_failure (after our retries)
  '40P01', // deadlock_detected (after our retries)
  '55P03', // lock_not_available
]);

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

function codeOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function kindOf(err: unknown): StoreErrorKind {
  const code = codeOf(err);
  if (code !== undefined) {
    if (code === '23505') return 'exists';
    if (code === '23503') return 'conflict';
    if (code === '23502' || code === '23514' || code.startsWith('22')) return 'invalid';
    if (UNAVAILABLE_STATES.has(code) || code.startsWith('08') || SOCKET_CODES.has(code)) return 'unavailable';
  }
  // pg's own connection failures ("Connection terminated", pool timeouts) carry no code; neither does a
  // failure we do not recognise. Temporary is the safe answer for both.
  return 'unavailable';
}

/** True for failures worth retrying the whole transaction right away (another transaction won a race). */
export function isRetryable(err: unknown): boolean {
  const code = codeOf(err);
  return code === '40001' || code === '40P01';
}

/** Wraps any failure; StoreErrors raised by our own checks pass through unchanged. */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  if (err instanceof AggregateError && err.errors.length > 0) return toStoreError(err.errors[0], what);
  const kind = kindOf(err);
  const code = codeOf(err);
  const text = err instanceof Error ? err.message : String(err);
  return new StoreError(kind, `postgres: ${what}: ${text}${code ? ` [${code}]` : ''}`, { cause: err });
}
