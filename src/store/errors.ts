/*
 * Typed store errors. A backend wraps every driver failure into one of these kinds so callers can map
 * them to protocol replies (e.g. `unavailable` -> SMTP 451 4.3.0, IMAP NO [UNAVAILABLE]).
 */

export type StoreErrorKind =
  | 'not_found'
  | 'exists'
  | 'conflict'
  | 'invalid'
  | 'stale_lease'
  | 'over_quota'
  | 'corrupt'
  | 'unavailable';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStoreError(err: unknown, kind?: StoreErrorKind): err is StoreError {
  return err instanceof StoreError && (kind === undefined || err.kind === kind);
}
