/*
 * SASL PLAIN/LOGIN credential check against the directory: the account's scrypt hash verified with
 * auth/password.ts. An unknown user, an account without a password and a malformed user name cost one
 * scrypt run against a dummy hash, so timing does not reveal which addresses exist. Never logs or keeps
 * passwords; StoreError `unavailable` propagates (the session answers 454/451), other lookups fail closed.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/index.js';
import { isStoreError } from '../store/index.js';
import { hashPassword, verifyPassword } from './password.js';

export type Authenticator = (user: string, password: string) => Promise<string | null>;

export function createAuthenticator(store: Store): Authenticator {
  // Made once, with today's default parameters, so a dummy check costs what a real one costs.
  let dummy: Promise<string> | null = null;
  const dummyHash = (): Promise<string> => (dummy ??= hashPassword(randomBytes(18).toString('base64')));

  return async (user, password) => {
    let hash: string | null = null;
    let address: string | null = null;
    try {
      const account = user.includes('@') ? await store.directory.getAccount(user) : null;
      if (account && account.passwordHash !== null) {
        hash = account.passwordHash;
        address = account.address;
      }
    } catch (err) {
      if (!isStoreError(err, 'invalid')) throw err;
    }
    const ok = await verifyPassword(password, hash ?? (await dummyHash()));
    return ok && address !== null ? address : null;
  };
}
