/*
 * Random bytes for identifiers (queue ids, session ids), drawn from one 4 KB block of
 * crypto.randomBytes refilled when used up: the same randomness as a call per id, without a
 * system call and a buffer per id — two of those per message showed up in the SMTP profile.
 * Not for secrets that must never sit in memory (salts and keys call randomBytes themselves).
 */
import { randomBytes } from 'node:crypto';

const BLOCK = 4096;
let pool = randomBytes(BLOCK);
let offset = 0;

/** `n` (≤ 256) fresh random bytes, as a view of the pool: read them before the next call. */
export function randomView(n: number): Buffer {
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`randomView: 1 to 256 bytes, not ${n}`);
  if (offset + n > BLOCK) {
    pool = randomBytes(BLOCK);
    offset = 0;
  }
  const view = pool.subarray(offset, offset + n);
  offset += n;
  return view;
}

/** `n` random bytes as lowercase hex. */
export function randomHex(n: number): string {
  return randomView(n).toString('hex');
}
