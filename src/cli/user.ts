/*
 * `cartero user add|list|passwd|remove|quota`: mail accounts of the directory.
 * Passwords are read from standard input only (never from the command line, where `ps` would show them)
 * and stored as scrypt hashes; an existing hash (e.g. Dovecot's {SHA512-CRYPT}) can be stored as it is
 * with --password-hash. Expected store errors become one-line messages (exit 1).
 */
import { hashPassword, isSupportedHash } from '../auth/password.js';
import { provisionAccount } from '../directory/accounts.js';
import { CliError, flag, parseBytes, runGroup, stringOption, UsageError, type Command, type ParsedArgs } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { accountView, emit, formatBytes, table } from './output.js';

const PASSWORD_OPTIONS = {
  'password-stdin': { type: 'boolean' },
  'no-password': { type: 'boolean' },
  'password-hash': { type: 'string' },
} as const;

const PASSWORD_HELP =
  '  --password-stdin   read the password from standard input (one trailing newline is dropped)\n' +
  '  --no-password      the account cannot log in (mail is still delivered)\n' +
  "  --password-hash H  store an existing hash as it is (migrations): Dovecot's {SHA512-CRYPT}/{SHA256-CRYPT},\n" +
  '                     crypt(3) $6$/$5$, or a Cartero $scrypt$ hash; quote it, the shell expands $\n';

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/** The hash to store, or null for "no password"; exactly one of the two options is required. */
async function passwordFromArgs(args: ParsedArgs, io: Io, command: string): Promise<string | null> {
  const fromStdin = flag(args, 'password-stdin');
  const none = flag(args, 'no-password');
  const given = stringOption(args, 'password-hash');
  if ([fromStdin, none, given !== undefined].filter(Boolean).length > 1) {
    throw new UsageError('give one of --password-stdin, --password-hash or --no-password', command);
  }
  if (given !== undefined) {
    if (!isSupportedHash(given)) throw new UsageError('--password-hash: not a {SHA512-CRYPT}, {SHA256-CRYPT}, $6$, $5$ or $scrypt$ hash', command);
    return given;
  }
  if (none) return null;
  if (!fromStdin) throw new UsageError('give --password-stdin (password on standard input), --password-hash or --no-password', command);
  const password = (await io.readStdin()).replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('empty password on standard input', command);
  return hashPassword(password);
}

const add: Command = {
  synopsis: 'add ADDRESS [--password-stdin | --password-hash HASH | --no-password] [--quota BYTES]',
  summary: 'create an account with INBOX, Drafts, Sent, Trash, Junk and Archive',
  details: `${PASSWORD_HELP}  --quota BYTES      storage limit: bytes, or with K/M/G/T (powers of 1024), or none\n`,
  options: { ...PASSWORD_OPTIONS, quota: { type: 'string' } },
  args: { min: 1, max: 1 },
  run: async (args, io) => {
    const address = args.positionals[0] ?? '';
    const quotaText = stringOption(args, 'quota');
    const quota = quotaText === undefined ? null : parseBytes(quotaText);
    const hash = await passwordFromArgs(args, io, 'user add');
    const account = await withStore(args.config, (store) =>
      explain(provisionAccount(store, address, hash, quota), {
        not_found: `domain ${domainOf(address)} not found`,
        exists: `${address} already exists as an account or alias`,
      }),
    );
    emit(io, args.json, accountView(account), () => `user ${account.address} added\n`);
    return 0;
  },
};

const list: Command = {
  synopsis: 'list [DOMAIN]',
  summary: 'list accounts, of one domain or of all',
  args: { min: 0, max: 1 },
  run: async (args, io) => {
    const accounts = await withStore(args.config, (store) => store.directory.listAccounts(args.positionals[0]));
    const views = accounts.map(accountView);
    emit(io, args.json, views, () =>
      table(
        ['ADDRESS', 'QUOTA', 'PASSWORD', 'CREATED'],
        views.map((a) => [a.address, formatBytes(a.quotaBytes), a.hasPassword ? 'yes' : 'no', a.createdAt]),
      ),
    );
    return 0;
  },
};

const passwd: Command = {
  synopsis: 'passwd ADDRESS --password-stdin | --password-hash HASH',
  summary: 'set the password of an account (or remove it with --no-password)',
  details: PASSWORD_HELP,
  options: PASSWORD_OPTIONS,
  args: { min: 1, max: 1 },
  run: async (args, io) => {
    const address = args.positionals[0] ?? '';
    const hash = await passwordFromArgs(args, io, 'user passwd');
    await withStore(args.config, (store) =>
      explain(store.directory.setPassword(address, hash), { not_found: `user ${address} not found` }),
    );
    emit(io, args.json, { address, hasPassword: hash !== null }, () =>
      hash === null ? `password of ${address} removed\n` : `password of ${address} changed\n`,
    );
    return 0;
  },
};

const remove: Command = {
  synopsis: 'remove ADDRESS',
  summary: 'remove an account with all its mailboxes and messages',
  args: { min: 1, max: 1 },
  run: async (args, io) => {
    const address = args.positionals[0] ?? '';
    await withStore(args.config, (store) =>
      explain(store.directory.removeAccount(address), { not_found: `user ${address} not found` }),
    );
    emit(io, args.json, { removed: address }, () => `user ${address} removed\n`);
    return 0;
  },
};

const quota: Command = {
  synopsis: 'quota ADDRESS [BYTES|none]',
  summary: 'show the storage used by an account, or set its limit',
  details: '  BYTES              bytes, or with K/M/G/T (powers of 1024); none removes the limit\n',
  args: { min: 1, max: 2 },
  run: async (args, io) => {
    const [address = '', value] = args.positionals;
    if (value !== undefined) return setQuota(args, io, address, parseBytes(value));
    const usage = await withStore(args.config, async (store) => {
      const account = await store.directory.getAccount(address);
      if (!account) return null;
      return { address: account.address, ...(await store.messages.quota(account.id)) };
    });
    if (!usage) throw new CliError(`user ${address} not found`);
    const percent = usage.limitBytes ? `${Math.round((100 * usage.bytes) / usage.limitBytes)}%` : '-';
    emit(io, args.json, usage, () =>
      table(
        ['ADDRESS', 'USED', 'MESSAGES', 'LIMIT', 'USE%'],
        [[usage.address, formatBytes(usage.bytes), String(usage.messages), formatBytes(usage.limitBytes), percent]],
      ),
    );
    return 0;
  },
};

async function setQuota(args: ParsedArgs, io: Io, address: string, bytes: number | null): Promise<number> {
  await withStore(args.config, (store) =>
    explain(store.directory.setQuota(address, bytes), { not_found: `user ${address} not found` }),
  );
  emit(io, args.json, { address, quotaBytes: bytes }, () => `quota of ${address} set to ${formatBytes(bytes)}\n`);
  return 0;
}

export function runUser(argv: string[], io: Io): Promise<number> {
  return runGroup('user', 'Manage mail accounts.', { add, list, passwd, remove, quota }, argv, io);
}
