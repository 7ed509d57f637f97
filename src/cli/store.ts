/*
 * `cartero store migrate --from OLD.yaml --to NEW.yaml [--force]`: copies the store OLD.yaml names (the
 * embedded store of a single node) into the one NEW.yaml names (PostgreSQL, for a cluster), verifies the
 * copy and prints the one configuration change to make. The safe, simple rule for a live node: stop it
 * first. The command refuses a source with a live node, and the verification re-reads the source, so mail
 * that arrived anyway shows up as a mismatch (exit 1) instead of being lost silently.
 * Exit 0 verified; 1 refused, failed or any mismatch; 2 usage or configuration error.
 */
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { checkSource, checkTarget, copyStore, CopyError, verifyCopy, type CopySummary, type VerifyReport } from '../store/copy.js';
import { openStore, type Store } from '../store/index.js';
import { CliError, flag, runGroup, stringOption, UsageError, type Command } from './args.js';
import type { Io } from './context.js';
import { formatBytes, table } from './output.js';

type StoreSettings = Config['store'];

/** The URL with its password masked, for the terminal. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** Where a store lives, as the operator would name it (for messages and "same store" checks). */
export function describeStore(s: StoreSettings): string {
  return s.backend === 'embedded' ? `embedded store at ${s.path}` : `postgres at ${redactUrl(s.url)}`;
}

/** The `store:` section to put into every node's configuration, as YAML (password masked). */
export function storeSection(s: StoreSettings): string {
  const section =
    s.backend === 'embedded'
      ? { backend: s.backend, path: s.path }
      : { backend: s.backend, url: redactUrl(s.url), pool_size: s.pool_size };
  return stringify({ store: section });
}

function sameStore(a: StoreSettings, b: StoreSettings): boolean {
  if (a.backend === 'embedded' && b.backend === 'embedded') return a.path === b.path;
  if (a.backend === 'postgres' && b.backend === 'postgres') return a.url === b.url;
  return false;
}

function summaryText(from: StoreSettings, to: StoreSettings, s: CopySummary, v: VerifyReport): string {
  let out = `copied ${describeStore(from)} -> ${describeStore(to)}\n\n`;
  out += table(
    ['WHAT', 'COPIED'],
    [
      ['domains', String(s.domains)],
      ['accounts', String(s.accounts)],
      ['aliases', String(s.aliases)],
      ['mailboxes', String(s.mailboxes)],
      ['messages', `${s.messages} (${formatBytes(s.bytes)})`],
      ['expunge records', String(s.expunged)],
      ['delivery keys', String(s.idempotencyKeys)],
      ['queue entries', `${s.queueEntries} (${s.queueRecipients} recipients, ${s.leasesDropped} leases dropped)`],
    ],
  );
  out += '\n';
  if (v.mailboxes.length > 0) {
    out += table(
      ['ACCOUNT', 'MAILBOX', 'UIDVALIDITY', 'MESSAGES', 'DIGEST', 'CHECK'],
      v.mailboxes.map((m) => [m.account, JSON.stringify(m.mailbox).slice(1, -1), String(m.uidValidity), String(m.messages), m.digest.slice(0, 16), m.ok ? 'ok' : 'MISMATCH']),
    );
  }
  out += `queue: ${v.queue.entries} entries, ${v.queue.recipients} recipients, digest ${v.queue.digest.slice(0, 16)}: ${v.queue.ok ? 'ok' : 'MISMATCH'}\n`;
  out += `directory: ${v.directory.domains} domains, ${v.directory.accounts} accounts, ${v.directory.aliases} aliases: ${v.directory.ok ? 'ok' : 'MISMATCH'}\n\n`;
  return out;
}

async function migrate(args: Parameters<Command['run']>[0], io: Io): Promise<number> {
  const fromFile = stringOption(args, 'from');
  const toFile = stringOption(args, 'to');
  if (!fromFile || !toFile) throw new UsageError('store migrate: both --from OLD.yaml and --to NEW.yaml are required', 'store migrate');
  const from = loadConfig(fromFile).store;
  const to = loadConfig(toFile).store;
  if (sameStore(from, to)) throw new UsageError(`store migrate: --from and --to name the same store (${describeStore(from)})`, 'store migrate');

  const now = Date.now();
  const source = await openStore(from, { migrate: from.migrate_on_start });
  let target: Store | null = null;
  try {
    target = await openStore(to, { migrate: false });
    await checkSource(source, now);
    // a version-1 migration applied just now means the schema did not exist: a fresh target
    const applied = await target.migrate();
    await checkTarget(target, { freshSchema: applied.includes(1), force: flag(args, 'force'), now });

    const summary = await copyStore(source, target, {
      clock: { now: () => now },
      onProgress: (e) => io.err(e.what === 'mailbox' ? `copied ${e.account}/${JSON.stringify(e.mailbox).slice(1, -1)}: ${e.messages} messages\n` : `copied the queue: ${e.entries} entries\n`),
    });
    const report = await verifyCopy(source, target, { now });
    if (args.json) {
      io.out(`${JSON.stringify({ ok: report.ok, from: describeStore(from), to: describeStore(to), copied: summary, verify: report, config: { store: to.backend === 'postgres' ? { ...to, url: redactUrl(to.url) } : to } }, null, 2)}\n`);
    } else {
      io.out(summaryText(from, to, summary, report));
      if (report.ok) {
        io.out(
          `verified: every count and hash matches.\n\n` +
            `The one configuration change: in every node's configuration (${fromFile}), replace the store: section\n` +
            `with the one from ${toFile}${to.backend === 'postgres' ? ' (password as written there)' : ''}, then start the node(s):\n\n` +
            storeSection(to).trimEnd().replace(/^/gm, '    ') +
            `\n\nKeep ${describeStore(from)} until the new store has served for a while; do not start a node on it again.\n`,
        );
      }
    }
    if (!report.ok) {
      for (const m of report.mismatches) io.err(`cartero: mismatch: ${m}\n`);
      io.err('cartero: the copy does not match the source (did mail arrive during the copy? stop the node, drop the target database and run again)\n');
      return 1;
    }
    return 0;
  } catch (err) {
    if (err instanceof CopyError) throw new CliError(err.message, { cause: err });
    throw err;
  } finally {
    await target?.close();
    await source.close();
  }
}

const commands: Record<string, Command> = {
  migrate: {
    synopsis: 'migrate --from OLD.yaml --to NEW.yaml [--force]',
    summary: 'copy a store (e.g. embedded) into another (e.g. PostgreSQL), keeping UIDs, flags and the queue; verify counts and hashes',
    details:
      '  --from FILE         configuration naming the store to copy (stop its node first)\n' +
      '  --to FILE           configuration naming the target store (a fresh, empty database)\n' +
      '  --force             accept a target whose Cartero schema exists but holds no data\n',
    options: { from: { type: 'string' }, to: { type: 'string' }, force: { type: 'boolean' } },
    args: { min: 0, max: 0 },
    run: migrate,
  },
};

export function runStore(argv: string[], io: Io): Promise<number> {
  return runGroup('store', 'Move a store to another backend.', commands, argv, io);
}
