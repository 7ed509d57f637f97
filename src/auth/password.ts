/*
 * Password hashing with scrypt (node:crypto) in a self-describing format:
 *   $scrypt$N=16384,r=8,p=1$<salt base64>$<hash base64>
 * Owns the format stored in Account.passwordHash. Never logs or returns passwords. verifyPassword never
 * throws for a malformed or hostile hash string: it returns false (cost parameters are bounded).
 *
 * Hashes brought over from Dovecot passwd-files and SQL tables are verified too (never produced):
 * crypt(3) SHA-512 and SHA-256 ("$6$…", "$5$…", glibc's algorithm, auth/sha-crypt.ts), bare
 * or with Dovecot's scheme prefix ("{SHA512-CRYPT}$6$…", "{SHA256-CRYPT}$5$…"). needsRehash is true
 * for them, so a caller can store today's scrypt hash after a successful login.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { parseShaCrypt, verifyShaCrypt } from './sha-crypt.js';

const DEFAULT_PARAMS = { N: 16384, r: 8, p: 1 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Bounds that keep a tampered hash from turning a login into a memory or CPU exhaustion.
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

function scrypt(password: string, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, params);
  return `$scrypt$N=${params.N},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

export async function verifyPassword(password: string, hash: string | null | undefined): Promise<boolean> {
  if (typeof hash !== 'string') return false;
  const crypt = cryptHash(hash);
  if (crypt !== null) return verifyShaCrypt(password, crypt);
  const parsed = parseHash(hash);
  if (!parsed) return false;
  try {
    const key = await scrypt(password, parsed.salt, parsed.key.length, parsed.params);
    return timingSafeEqual(key, parsed.key);
  } catch {
    return false;
  }
}

/** True when the hash uses weaker parameters than today's default (rehash at next login). */
export function needsRehash(hash: string): boolean {
  const parsed = parseHash(hash);
  return !parsed || parsed.params.N < DEFAULT_PARAMS.N || parsed.params.r < DEFAULT_PARAMS.r;
}

/** True when verifyPassword understands the format (scrypt, or a SHA-crypt hash from Dovecot). */
export function isSupportedHash(hash: string): boolean {
  return parseHash(hash) !== null || cryptHash(hash) !== null;
}

const CRYPT_SCHEMES: Record<string, '5' | '6'> = { '{SHA512-CRYPT}': '6', '{SHA256-CRYPT}': '5' };

/** "$6$[rounds=N$]salt$hash" (or "$5$…"), with or without Dovecot's matching {SCHEME} prefix; null otherwise. */
function cryptHash(hash: string): string | null {
  let h = hash;
  const scheme = /^\{[A-Z0-9-]{1,20}\}/.exec(h)?.[0];
  if (scheme !== undefined) {
    const id = CRYPT_SCHEMES[scheme];
    if (id === undefined || !h.startsWith(`$${id}$`, scheme.length)) return null;
    h = h.slice(scheme.length);
  }
  return parseShaCrypt(h) === null ? null : h;
}

function parseHash(hash: string): { params: ScryptParams; salt: Buffer; key: Buffer } | null {
  const m = /^\$scrypt\$N=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/.exec(hash);
  if (!m) return null;
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const powerOfTwo = params.N > 1 && (params.N & (params.N - 1)) === 0;
  if (!powerOfTwo || params.N > MAX_N || params.r < 1 || params.r > MAX_R || params.p < 1 || params.p > MAX_P) return null;
  const salt = Buffer.from(m[4] ?? '', 'base64');
  const key = Buffer.from(m[5] ?? '', 'base64');
  if (salt.length < 8 || key.length < 16 || key.length > 128) return null;
  return { params, salt, key };
}

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}
