/*
 * `cartero queue list|show|flush|requeue|hold|release|delete|pause|resume|paused|totals|log`: Postfix's
 * postqueue -p / -f, postsuper -h / -H / -r / -d and qshape over the store's QueueStore, for any node
 * of a cluster (no IPC: a running scheduler picks due entries up within delivery.poll_interval_ms).
 * Entries are named by queue id, ALL, or selected by --sender/--recipient/--domain/--reason/--all-deferred;
 * a mutating command without a selection is a usage error, never "everything". Every change is logged
 * with who made it (queue-audit.ts). Expected store errors become one-line messages (exit 1).
 */
import { CliError, runGroup, stringOption, flag, UsageError, type Command, type OptionSpec, type ParsedArgs } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { emit, formatTime, table } from './output.js';
import { actorName, createAudit, currentActor, type Audit } from './queue-audit.js';
import type { Config } from '../config/schema.js';
import { formatTotals, queueTotals } from './queue-totals.js';
import { isStoreError, type QueueAdminRecord, type QueueEntry, type Store } from '../store/index.js';

const SELECT: OptionSpec = {
  sender: { type: 'string' },
  recipient: { type: 'string' },
  domain: { type: 'string' },
  reason: { type: 'string' },
};

const MUTATE_SELECT: OptionSpec = { ...SELECT, 'all-deferred': { type: 'boolean' } };

const SELECT_HELP =
  'selection (instead of ID..., combined with AND):\n' +
  '  --sender ADDRESS     envelope sender (use "" or <> for the null sender)\n' +
  '  --recipient ADDRESS  a pending recipient\n' +
  '  --domain DOMAIN      a pending recipient in this domain\n' +
  '  --reason TEXT        a pending recipient whose last error contains TEXT (case-insensitive)\n';

const MUTATE_HELP = `${SELECT_HELP}  --all-deferred       every entry that was tried and deferred (active, a pending recipient with an attempt)\n`;

export interface EntryView {
  id: string;
  state: 'active' | 'held';
  leased: boolean;
  leaseOwner: string | null;
  size: number;
  arrivalTime: string;
  nextAttempt: string;
  attempts: number;
  sender: string;
  recipients: { address: string; state: string; attempts: number; lastError: string | null; orcpt: string | null; notify: string[] | null }[];
}

function isLeased(e: QueueEntry, now: number): boolean {
  return e.leaseOwner !== null && e.leaseExpiresAt !== null && e.leaseExpiresAt > now;
}

export function entryView(e: QueueEntry, now: number): EntryView {
  return {
    id: e.id,
    state: e.state,
    leased: isLeased(e, now),
    leaseOwner: isLeased(e, now) ? e.leaseOwner : null,
    size: e.size,
    arrivalTime: formatTime(e.receivedAt),
    nextAttempt: formatTime(e.dueAt),
    attempts: e.attempts,
    sender: e.sender,
    recipients: e.recipients.map((r) => ({ address: r.address, state: r.state, attempts: r.attempts, lastError: r.lastError, orcpt: r.orcpt, notify: r.notify })),
  };
}

// ---------------------------------------------------------------- postqueue -p

/** "Thu Jan  1 12:00:00" in local time, as postqueue -p shows arrival times. */
function ctimeShort(ms: number): string {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()];
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${day} ${month} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Keeps a one-line display safe: no control characters from reasons or addresses reach the terminal. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

/** The postqueue -p listing: `*` leased (being delivered), `!` held, pending recipients under their last error. */
export function formatQueueList(entries: QueueEntry[], now: number): string {
  if (entries.length === 0) return 'Mail queue is empty\n';
  const idWidth = Math.max(10, ...entries.map((e) => e.id.length)) + 1;
  const indent = ' '.repeat(idWidth + 1 + 8 + 1 + 19 + 2);
  let out = `${'-Queue ID-'.padEnd(idWidth)} --Size-- ----Arrival Time--- -Sender/Recipient-------\n`;
  let total = 0;
  for (const e of entries) {
    total += e.size;
    const mark = e.state === 'held' ? '!' : isLeased(e, now) ? '*' : ' ';
    out += `${(e.id + mark).padEnd(idWidth)} ${String(e.size).padStart(8)} ${ctimeShort(e.receivedAt)}  ${e.sender === '' ? 'MAILER-DAEMON' : printable(e.sender)}\n`;
    const groups = new Map<string, string[]>();
    for (const r of e.recipients.filter((x) => x.state === 'pending')) {
      const key = r.lastError ?? '';
      groups.set(key, [...(groups.get(key) ?? []), r.address]);
    }
    for (const [reason, addresses] of groups) {
      if (reason !== '') out += `${indent}(${printable(reason)})\n`;
      for (const a of addresses) out += `${indent}${printable(a)}\n`;
    }
    out += '\n';
  }
  const kbytes = Math.ceil(total / 1024);
  return `${out}-- ${kbytes} Kbytes in ${entries.length} Request${entries.length === 1 ? '' : 's'}.\n`;
}

// ---------------------------------------------------------------- selection

interface Selection {
  all: boolean;
  ids: string[];
  sender?: string;
  recipient?: string;
  domain?: string;
  reason?: string;
  deferred?: boolean;
}

function selectionOf(args: ParsedArgs, required: boolean): Selection {
  const ids = args.positionals;
  const all = ids.length === 1 && ids[0] === 'ALL';
  if (ids.includes('ALL') && !all) throw new UsageError('ALL cannot be combined with queue ids');
  const sel: Selection = { all, ids: all ? [] : ids };
  const sender = stringOption(args, 'sender');
  if (sender !== undefined) sel.sender = sender === '<>' ? '' : sender.toLowerCase();
  const recipient = stringOption(args, 'recipient');
  if (recipient !== undefined) sel.recipient = recipient.toLowerCase();
  const domain = stringOption(args, 'domain');
  if (domain !== undefined) sel.domain = domain.toLowerCase().replace(/\.$/, '');
  const reason = stringOption(args, 'reason');
  if (reason !== undefined) sel.reason = reason.toLowerCase();
  if (flag(args, 'all-deferred')) sel.deferred = true;
  const filtered = sender !== undefined || recipient !== undefined || domain !== undefined || reason !== undefined || sel.deferred === true;
  if (required && !all && ids.length === 0 && !filtered) {
    throw new UsageError('name the entries: queue ids, ALL, or --sender/--recipient/--domain/--reason/--all-deferred');
  }
  if ((all || ids.length > 0) && filtered) throw new UsageError('give queue ids/ALL or selection options, not both');
  return sel;
}

function matches(e: QueueEntry, s: Selection): boolean {
  if (s.sender !== undefined && e.sender.toLowerCase() !== s.sender) return false;
  const pending = e.recipients.filter((r) => r.state === 'pending');
  if (s.recipient !== undefined && !pending.some((r) => r.address.toLowerCase() === s.recipient)) return false;
  if (s.domain !== undefined && !pending.some((r) => r.address.toLowerCase().endsWith(`@${s.domain}`))) return false;
  if (s.reason !== undefined && !pending.some((r) => (r.lastError ?? '').toLowerCase().includes(s.reason ?? ''))) return false;
  if (s.deferred === true && !(e.state === 'active' && pending.some((r) => r.attempts > 0))) return false;
  return true;
}

/** How the entries were chosen, for the admin log ("--domain example.org", "ALL"); null for named ids. */
function describeSelection(s: Selection): string | null {
  if (s.ids.length > 0) return null;
  if (s.all) return 'ALL';
  const parts: string[] = [];
  if (s.sender !== undefined) parts.push(`--sender <${s.sender}>`);
  if (s.recipient !== undefined) parts.push(`--recipient ${s.recipient}`);
  if (s.domain !== undefined) parts.push(`--domain ${s.domain}`);
  if (s.reason !== undefined) parts.push(`--reason ${JSON.stringify(s.reason)}`);
  if (s.deferred === true) parts.push('--all-deferred');
  return `selected by ${parts.join(' ')}`;
}

/** The ids a command acts on: named ones (each must exist), or those of the listing that match. */
async function selectIds(store: Store, s: Selection, state?: 'active' | 'held'): Promise<string[]> {
  if (s.ids.length > 0) {
    for (const id of s.ids) if (!(await store.queue.get(id))) throw new CliError(`queue id ${id} not found`);
    return s.ids;
  }
  const entries = await store.queue.list(state ? { state } : {});
  return entries.filter((e) => matches(e, s)).map((e) => e.id);
}

/** Runs `op` on each id; an id that vanished meanwhile (delivered, deleted) is reported, not fatal. */
async function each(ids: string[], op: (id: string) => Promise<void>): Promise<{ done: string[]; gone: string[] }> {
  const done: string[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    try {
      await op(id);
      done.push(id);
    } catch (err) {
      if (isStoreError(err, 'not_found')) gone.push(id);
      else throw err;
    }
  }
  return { done, gone };
}

/** Opens the admin log of one command run. */
type AuditFactory = (store: Store, config: Config, io: Io) => Audit;

function mutating(
  makeAudit: AuditFactory,
  verb: string,
  summary: string,
  state: 'active' | 'held' | undefined,
  op: (store: Store, id: string, now: number) => Promise<void>,
): Command {
  return {
    synopsis: `${verb} ID...|ALL [--sender A] [--recipient A] [--domain D] [--reason TEXT] [--all-deferred]`,
    summary,
    details: MUTATE_HELP,
    options: MUTATE_SELECT,
    args: { min: 0, max: 1000 },
    run: async (args, io) => {
      const sel = selectionOf(args, true);
      const result = await withStore(args.config, async (store, config) => {
        const audit = makeAudit(store, config, io);
        const ids = await selectIds(store, sel, state);
        return each(ids, async (id) => {
          await op(store, id, Date.now());
          await audit.record(verb, id, describeSelection(sel));
        });
      });
      const past = { requeue: 'requeued', hold: 'held', release: 'released', delete: 'deleted' }[verb] ?? verb;
      emit(io, args.json, { [past]: result.done, gone: result.gone }, () => {
        let out = result.done.map((id) => `${id}: ${past}\n`).join('');
        out += result.gone.map((id) => `${id}: no longer in the queue\n`).join('');
        return `${out}${past} ${result.done.length} message${result.done.length === 1 ? '' : 's'}\n`;
      });
      return 0;
    },
  };
}

// ---------------------------------------------------------------- admin log

function adminView(r: QueueAdminRecord): { at: string; actor: string; action: string; target: string; detail: string | null } {
  return { at: formatTime(r.at), actor: r.actor, action: r.action, target: r.target, detail: r.detail };
}

function formatAdmin(r: QueueAdminRecord): string {
  return printable(`${formatTime(r.at)} ${r.target} ${r.action} by ${r.actor}${r.detail ? ` (${r.detail})` : ''}`);
}

function createActorName(): string {
  return actorName(currentActor());
}

// ---------------------------------------------------------------- commands

function queueCommands(makeAudit: AuditFactory): Record<string, Command> {
  return {
    list: {
      synopsis: 'list [--sender A] [--recipient A] [--domain D] [--reason TEXT]',
      summary: 'list the queue (postqueue -p): * being delivered, ! held',
      details: SELECT_HELP,
      options: SELECT,
      args: { min: 0, max: 0 },
      run: async (args, io) => {
        const sel = selectionOf(args, false);
        const entries = (await withStore(args.config, (store) => store.queue.list())).filter((e) => matches(e, sel));
        const now = Date.now();
        emit(io, args.json, entries.map((e) => entryView(e, now)), () => formatQueueList(entries, now));
        return 0;
      },
    },
    show: {
      synopsis: 'show ID [--content]',
      summary: 'one entry: envelope, recipients with state and last error, meta, and the message with --content',
      options: { content: { type: 'boolean' } },
      args: { min: 1, max: 1 },
      run: async (args, io) => {
        const id = args.positionals[0] ?? '';
        const withContent = flag(args, 'content');
        const { entry, content, history } = await withStore(args.config, async (store) => {
          const entry = await store.queue.get(id);
          if (!entry) throw new CliError(`queue id ${id} not found`);
          const content = withContent ? await explain(store.queue.content(id), { not_found: `queue id ${id} was removed meanwhile` }) : null;
          return { entry, content, history: await store.queue.adminLog({ target: id }) };
        });
        const now = Date.now();
        const view = entryView(entry, now);
        const text = content?.toString('utf8') ?? null;
        emit(io, args.json, { ...view, meta: entry.meta, adminLog: history.map(adminView), ...(text !== null ? { content: text } : {}) }, () => {
          const lease = view.leased ? ` (being delivered by ${printable(view.leaseOwner ?? '?')})` : '';
          let out =
            `queue id:     ${view.id}\n` +
            `state:        ${view.state}${lease}\n` +
            `arrival:      ${view.arrivalTime}\n` +
            `next attempt: ${view.nextAttempt}\n` +
            `attempts:     ${view.attempts}\n` +
            `size:         ${view.size} bytes\n` +
            `sender:       <${printable(view.sender)}>\n\n`;
          out += table(
            ['RECIPIENT', 'STATE', 'ATTEMPTS', 'NOTIFY', 'LAST ERROR'],
            view.recipients.map((r) => [printable(r.address), r.state, String(r.attempts), r.notify?.join(',') ?? '-', printable(r.lastError ?? '-')]),
          );
          out += '\nmeta:\n';
          for (const [k, v] of Object.entries(entry.meta)) out += `  ${k}: ${printable(JSON.stringify(v) ?? 'undefined')}\n`;
          if (history.length > 0) out += `\nadmin actions:\n${history.map((r) => `  ${formatAdmin(r)}\n`).join('')}`;
          if (text !== null) out += `\n${text}${text.endsWith('\n') ? '' : '\n'}`;
          return out;
        });
        return 0;
      },
    },
    flush: {
      synopsis: 'flush [DOMAIN]',
      summary: 'make every active entry (with a pending recipient in DOMAIN) due now (postqueue -f / -s)',
      args: { min: 0, max: 1 },
      run: async (args, io) => {
        const domain = args.positionals[0];
        const flushed = await withStore(args.config, async (store, config) => {
          const audit = makeAudit(store, config, io);
          let ids: string[];
          if (domain === undefined) ids = (await each(await selectIds(store, { all: true, ids: [] }, 'active'), (id) => store.queue.requeue(id, Date.now()))).done;
          else ids = await explain(store.queue.flushDomain(domain, Date.now()), { invalid: `invalid domain "${domain}"` });
          await audit.record('flush', domain?.toLowerCase().replace(/\.$/, '') ?? 'ALL', `${ids.length} entr${ids.length === 1 ? 'y' : 'ies'}`);
          return ids;
        });
        emit(io, args.json, { flushed }, () => `flushed ${flushed.length} message${flushed.length === 1 ? '' : 's'}\n`);
        return 0;
      },
    },
    pause: {
      synopsis: 'pause DOMAIN',
      summary: 'stop delivering to DOMAIN on every node until resumed (entries stay queued)',
      args: { min: 1, max: 1 },
      run: async (args, io) => {
        const domain = args.positionals[0] ?? '';
        const fresh = await withStore(args.config, async (store, config) => {
          const fresh = await explain(store.queue.pause(domain, createActorName(), Date.now()), { invalid: `invalid domain "${domain}"` });
          if (fresh) await makeAudit(store, config, io).record('pause', domain.toLowerCase().replace(/\.$/, ''));
          return fresh;
        });
        emit(io, args.json, { domain, paused: true, already: !fresh }, () => `${domain}: ${fresh ? 'paused' : 'already paused'}\n`);
        return 0;
      },
    },
    resume: {
      synopsis: 'resume DOMAIN',
      summary: 'deliver to a paused DOMAIN again; its entries become due now',
      args: { min: 1, max: 1 },
      run: async (args, io) => {
        const domain = args.positionals[0] ?? '';
        const ids = await withStore(args.config, async (store, config) => {
          const ids = await explain(store.queue.resume(domain, Date.now()), { not_found: `${domain} is not paused`, invalid: `invalid domain "${domain}"` });
          await makeAudit(store, config, io).record('resume', domain.toLowerCase().replace(/\.$/, ''), `${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} due now`);
          return ids;
        });
        emit(io, args.json, { domain, resumed: true, flushed: ids }, () => `${domain}: resumed, ${ids.length} message${ids.length === 1 ? '' : 's'} due now\n`);
        return 0;
      },
    },
    paused: {
      synopsis: 'paused',
      summary: 'list the paused destination domains',
      args: { min: 0, max: 0 },
      run: async (args, io) => {
        const pauses = await withStore(args.config, (store) => store.queue.pauses());
        emit(io, args.json, pauses.map((p) => ({ domain: p.domain, by: p.by, since: formatTime(p.since) })), () =>
          pauses.length === 0 ? 'no paused domains\n' : table(['DOMAIN', 'SINCE', 'BY'], pauses.map((p) => [p.domain, formatTime(p.since), printable(p.by)])),
        );
        return 0;
      },
    },
    totals: {
      synopsis: 'totals',
      summary: 'pending recipients by destination domain and age, and by reason (qshape)',
      args: { min: 0, max: 0 },
      run: async (args, io) => {
        const { entries, pauses } = await withStore(args.config, async (store) => ({ entries: await store.queue.list(), pauses: await store.queue.pauses() }));
        const totals = queueTotals(entries, new Set(pauses.map((p) => p.domain)), Date.now());
        emit(io, args.json, totals, () => formatTotals(totals));
        return 0;
      },
    },
    log: {
      synopsis: 'log [ID|DOMAIN] [--limit N]',
      summary: 'the admin log: who held, released, requeued, deleted, flushed, paused what (default: the last 50)',
      options: { limit: { type: 'string' } },
      args: { min: 0, max: 1 },
      run: async (args, io) => {
        const target = args.positionals[0];
        const limitText = stringOption(args, 'limit') ?? '50';
        if (!/^\d{1,6}$/.test(limitText) || Number(limitText) === 0) throw new UsageError(`--limit: expected a number from 1 to 999999, found "${limitText}"`);
        const records = await withStore(args.config, (store) => store.queue.adminLog({ ...(target !== undefined ? { target } : {}), limit: Number(limitText) }));
        emit(io, args.json, records.map(adminView), () => (records.length === 0 ? 'no admin actions recorded\n' : records.map((r) => `${formatAdmin(r)}\n`).join('')));
        return 0;
      },
    },
    requeue: mutating(makeAudit, 'requeue', 'make entries due now (postqueue -i)', undefined, (store, id, now) => store.queue.requeue(id, now)),
    hold: mutating(makeAudit, 'hold', 'put entries on hold: not delivered until released (postsuper -h)', 'active', (store, id) => store.queue.hold(id)),
    release: mutating(makeAudit, 'release', 'release held entries, due now (postsuper -H)', 'held', (store, id, now) => store.queue.release(id, now)),
    delete: mutating(makeAudit, 'delete', 'remove entries from the queue without notice (postsuper -d)', undefined, (store, id) => store.queue.remove(id)),
  };
}

export interface QueueRunOptions {
  /**
   * Write each admin action as a log line on standard error (default true). `sendmail -q` turns it off:
   * cron mails any output. The store's admin log records the action either way.
   */
  logLines?: boolean;
}

export function runQueue(argv: string[], io: Io, options: QueueRunOptions = {}): Promise<number> {
  const makeAudit: AuditFactory = (store, config, cmdIo) =>
    createAudit({ store, config: options.logLines === false ? { log: { ...config.log, level: 'silent' } } : config, io: cmdIo });
  return runGroup('queue', 'Inspect and manage the mail queue (shared by every node on the same store).', queueCommands(makeAudit), argv, io);
}
