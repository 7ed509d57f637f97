/*
 * `cartero queue list|show|flush|requeue|hold|release|delete`: Postfix's postqueue -p / -f and
 * postsuper -h / -H / -r / -d over the store's QueueStore, for any node of a cluster (no IPC: a running
 * scheduler picks due entries up within delivery.poll_interval_ms). Entries are named by queue id,
 * ALL, or selected by --sender/--recipient/--domain/--reason; a mutating command without a selection is
 * a usage error, never "everything". Expected store errors become one-line messages (exit 1).
 */
import { CliError, runGroup, stringOption, flag, UsageError, type Command, type OptionSpec, type ParsedArgs } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { emit, formatTime, table } from './output.js';
import { isStoreError, type QueueEntry, type Store } from '../store/index.js';

const SELECT: OptionSpec = {
  sender: { type: 'string' },
  recipient: { type: 'string' },
  domain: { type: 'string' },
  reason: { type: 'string' },
};

const SELECT_HELP =
  'selection (instead of ID..., combined with AND):\n' +
  '  --sender ADDRESS     envelope sender (use "" or <> for the null sender)\n' +
  '  --recipient ADDRESS  a pending recipient\n' +
  '  --domain DOMAIN      a pending recipient in this domain\n' +
  '  --reason TEXT        a pending recipient whose last error contains TEXT (case-insensitive)\n';

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
  const filtered = sender !== undefined || recipient !== undefined || domain !== undefined || reason !== undefined;
  if (required && !all && ids.length === 0 && !filtered) {
    throw new UsageError('name the entries: queue ids, ALL, or --sender/--recipient/--domain/--reason');
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
  return true;
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

function mutating(verb: string, summary: string, state: 'active' | 'held' | undefined, op: (store: Store, id: string, now: number) => Promise<void>): Command {
  return {
    synopsis: `${verb} ID...|ALL [--sender A] [--recipient A] [--domain D] [--reason TEXT]`,
    summary,
    details: SELECT_HELP,
    options: SELECT,
    args: { min: 0, max: 1000 },
    run: async (args, io) => {
      const sel = selectionOf(args, true);
      const result = await withStore(args.config, async (store) => {
        const ids = await selectIds(store, sel, state);
        return each(ids, (id) => op(store, id, Date.now()));
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

// ---------------------------------------------------------------- commands

const commands: Record<string, Command> = {
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
      const { entry, content } = await withStore(args.config, async (store) => {
        const entry = await store.queue.get(id);
        if (!entry) throw new CliError(`queue id ${id} not found`);
        const content = withContent ? await explain(store.queue.content(id), { not_found: `queue id ${id} was removed meanwhile` }) : null;
        return { entry, content };
      });
      const now = Date.now();
      const view = entryView(entry, now);
      const text = content?.toString('utf8') ?? null;
      emit(io, args.json, { ...view, meta: entry.meta, ...(text !== null ? { content: text } : {}) }, () => {
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
        if (text !== null) out += `\n${text}${text.endsWith('\n') ? '' : '\n'}`;
        return out;
      });
      return 0;
    },
  },
  flush: {
    synopsis: 'flush [DOMAIN]',
    summary: 'make every active entry (with a recipient in DOMAIN) due now (postqueue -f / -s)',
    args: { min: 0, max: 1 },
    run: async (args, io) => {
      const domain = args.positionals[0];
      const sel: Selection = { all: domain === undefined, ids: [], ...(domain !== undefined ? { domain: domain.toLowerCase().replace(/\.$/, '') } : {}) };
      const result = await withStore(args.config, async (store) => each(await selectIds(store, sel, 'active'), (id) => store.queue.requeue(id, Date.now())));
      emit(io, args.json, { flushed: result.done }, () => `flushed ${result.done.length} message${result.done.length === 1 ? '' : 's'}\n`);
      return 0;
    },
  },
  requeue: mutating('requeue', 'make entries due now (postqueue -i)', undefined, (store, id, now) => store.queue.requeue(id, now)),
  hold: mutating('hold', 'put entries on hold: not delivered until released (postsuper -h)', 'active', (store, id) => store.queue.hold(id)),
  release: mutating('release', 'release held entries, due now (postsuper -H)', 'held', (store, id, now) => store.queue.release(id, now)),
  delete: mutating('delete', 'remove entries from the queue without notice (postsuper -d)', undefined, (store, id) => store.queue.remove(id)),
};

export function runQueue(argv: string[], io: Io): Promise<number> {
  return runGroup('queue', 'Inspect and manage the mail queue (shared by every node on the same store).', commands, argv, io);
}
