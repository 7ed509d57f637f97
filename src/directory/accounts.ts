/*
 * Account provisioning: an account is usable only with its INBOX and the RFC 6154 special-use mailboxes
 * that mail clients expect, so every caller (CLI, admin API, directory sync) creates accounts here.
 * Talks to the store API only. Errors are the store's StoreError; a half-provisioned account is removed
 * before the error is rethrown.
 */
import type { Account, Store } from '../store/index.js';

export interface MailboxTemplate {
  name: string;
  specialUse: string | null;
}

/** The mailboxes of a new account, all subscribed. */
export const DEFAULT_MAILBOXES: readonly MailboxTemplate[] = [
  { name: 'INBOX', specialUse: null },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Archive', specialUse: '\\Archive' },
];

export async function provisionAccount(
  store: Store,
  address: string,
  passwordHash: string | null,
  quotaBytes: number | null = null,
): Promise<Account> {
  const account = await store.directory.addAccount({ address, passwordHash, quotaBytes });
  try {
    for (const mailbox of DEFAULT_MAILBOXES) {
      await store.mailboxes.create(account.id, mailbox.name, { specialUse: mailbox.specialUse, subscribed: true });
    }
  } catch (err) {
    // Best effort: an account without an INBOX would accept mail it cannot file.
    await store.directory.removeAccount(account.address).catch(() => undefined);
    throw err;
  }
  return account;
}
