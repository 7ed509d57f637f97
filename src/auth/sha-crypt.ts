/*
 * crypt(3) SHA-512 and SHA-256 ("$6$…", "$5$…"; U. Drepper, "Unix crypt using SHA-256 and SHA-512"),
 * to verify the hashes administrators bring from Dovecot passwd-files and SQL tables (Cartero itself stores
 * scrypt; makeShaCrypt exists for benchmarks that give Dovecot and Cartero the same hash).
 *
 * Why our own: the 5,000 default rounds are 5,000 tiny digests. Through node:crypto every digest pays
 * for a Hash object and its garbage (≈10 ms and a GC per login, most of an IMAP LOGIN); one reused
 * WebAssembly hasher (hash-wasm) over one reused round buffer does the same in about half the time.
 * The digests are synchronous, so one hasher per algorithm is never used by two checks at once.
 */
import { timingSafeEqual } from 'node:crypto';
import { createSHA256, createSHA512, type IHasher } from 'hash-wasm';

export type ShaCryptId = '5' | '6';

const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
// The spec allows 999,999,999; more than this in a stored hash is hostile, not real.
const MAX_CRYPT_ROUNDS = 100_000;
// Step 3 hashes the password len(P) times (quadratic); no real password comes near this.
const MAX_PASSWORD_BYTES = 4096;
const SALT_MAX = 16;

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The byte triples of the final encoding, in the spec's order, then the trailing bytes. */
const ENCODING: Record<ShaCryptId, { triples: number[][]; tail: number[] }> = {
  '6': { triples: rotatedTriples(21, [0, 1, 2], [1, 2, 0], [2, 0, 1]), tail: [63] },
  '5': { triples: rotatedTriples(10, [0, 1, 2], [2, 0, 1], [1, 2, 0]), tail: [31, 30] },
};

function rotatedTriples(n: number, ...orders: number[][]): number[][] {
  const out: number[][] = [];
  for (let k = 0; k < n; k++) {
    const column = [k, k + n, k + 2 * n];
    out.push(orders[k % 3]!.map((i) => column[i]!));
  }
  return out;
}

const hashers: Partial<Record<ShaCryptId, Promise<IHasher>>> = {};
function hasher(id: ShaCryptId): Promise<IHasher> {
  return (hashers[id] ??= id === '6' ? createSHA512() : createSHA256());
}

export interface ParsedShaCrypt {
  id: ShaCryptId;
  /** null when the hash names no rounds (then the default 5,000, and none in the output) */
  rounds: number | null;
  salt: string;
}

/** "$6$[rounds=N$]salt$hash" (or "$5$…") → its parts; null when it is not a well-formed SHA-crypt hash. */
export function parseShaCrypt(hash: string): ParsedShaCrypt | null {
  const m = /^\$([56])\$(?:rounds=(\d{1,9})\$)?([^$:\n]{0,16})\$([./0-9A-Za-z]+)$/.exec(hash);
  if (!m) return null;
  const id = m[1] as ShaCryptId;
  if (m[4]!.length !== (id === '6' ? 86 : 43)) return null;
  const rounds = m[2] === undefined ? null : Number(m[2]);
  if (rounds !== null && rounds > MAX_CRYPT_ROUNDS) return null;
  return { id, rounds, salt: m[3]! };
}

/** True when `password` (UTF-8 bytes, as crypt(3) gets them) produces `hash`; false for anything malformed. */
export async function verifyShaCrypt(password: string, hash: string): Promise<boolean> {
  const parsed = parseShaCrypt(hash);
  if (!parsed) return false;
  const pw = Buffer.from(password, 'utf8');
  if (pw.length > MAX_PASSWORD_BYTES) return false;
  const computed = Buffer.from(shaCrypt(await hasher(parsed.id), parsed, pw), 'latin1');
  const stored = Buffer.from(hash, 'latin1');
  return computed.length === stored.length && timingSafeEqual(computed, stored);
}

/** A "$6$salt$…" / "$5$salt$…" hash of `password` with the default rounds. */
export async function makeShaCrypt(id: ShaCryptId, password: string, salt: string): Promise<string> {
  return shaCrypt(await hasher(id), { id, rounds: null, salt }, Buffer.from(password, 'utf8'));
}

/** The whole crypt string for `password` with the parameters of `parsed`. */
function shaCrypt(h: IHasher, parsed: ParsedShaCrypt, pw: Buffer): string {
  const size = parsed.id === '6' ? 64 : 32;
  const salt = Buffer.from(parsed.salt.slice(0, SALT_MAX), 'latin1');
  const rounds = Math.max(ROUNDS_MIN, parsed.rounds ?? ROUNDS_DEFAULT);
  // steps 4–8: B = H(P S P)
  h.init();
  h.update(pw);
  h.update(salt);
  h.update(pw);
  const b = h.digest('binary');
  // steps 1–3, 9–12: A = H(P S B… then B or P for each bit of len(P))
  h.init();
  h.update(pw);
  h.update(salt);
  let n = pw.length;
  for (; n > size; n -= size) h.update(b);
  h.update(b.subarray(0, n));
  for (let l = pw.length; l > 0; l >>= 1) h.update(l & 1 ? b : pw);
  let c = h.digest('binary');
  // steps 13–16: P' from H(P repeated len(P) times)
  h.init();
  for (let i = 0; i < pw.length; i++) h.update(pw);
  const pSeq = repeatTo(h.digest('binary'), pw.length);
  // steps 17–20: S' from H(S repeated 16 + A[0] times)
  h.init();
  for (let i = 0; i < 16 + c[0]!; i++) h.update(salt);
  const sSeq = repeatTo(h.digest('binary'), salt.length);

  // step 21: the rounds, each input assembled in one reused buffer
  const buf = new Uint8Array(2 * size + sSeq.length + 2 * pSeq.length);
  for (let i = 0; i < rounds; i++) {
    let o = 0;
    const odd = (i & 1) === 1;
    buf.set(odd ? pSeq : c, o);
    o += odd ? pSeq.length : size;
    if (i % 3 !== 0) (buf.set(sSeq, o), (o += sSeq.length));
    if (i % 7 !== 0) (buf.set(pSeq, o), (o += pSeq.length));
    buf.set(odd ? c : pSeq, o);
    o += odd ? size : pSeq.length;
    h.init();
    h.update(buf.subarray(0, o));
    c = h.digest('binary');
  }

  const head = parsed.rounds === null ? `$${parsed.id}$` : `$${parsed.id}$rounds=${rounds}$`;
  return `${head}${salt.toString('latin1')}$${encode(c, ENCODING[parsed.id])}`;
}

function repeatTo(d: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = d[i % d.length]!;
  return out;
}

function encode(c: Uint8Array, order: { triples: number[][]; tail: number[] }): string {
  let out = '';
  const put = (w: number, chars: number): void => {
    for (let k = 0; k < chars; k++, w >>>= 6) out += ITOA64[w & 63];
  };
  for (const [a, b, d] of order.triples) put((c[a!]! << 16) | (c[b!]! << 8) | c[d!]!, 4);
  if (order.tail.length === 1) put(c[order.tail[0]!]!, 2);
  else put((c[order.tail[0]!]! << 8) | c[order.tail[1]!]!, 3);
  return out;
}
