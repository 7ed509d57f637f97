/*
 * Entering and leaving a mailbox: SELECT/EXAMINE (with CONDSTORE and QRESYNC parameters, RFC 7162),
 * CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315). SELECT answers from the mailbox row
 * and the distinct flag sets (two indexed reads, whatever the mailbox's size); the view reads message
 * metadata (never bodies) when a command first needs it.
 */
import { parseSequenceSet, formatSet, resolveAgainst } from '../../proto/sequence.js';
import { flagList } from '../../proto/response.js';
import { Args, ImapParseError, numberOf } from '../../proto/tokens.js';
import { viewCacheOf } from '../../view-cache.js';
import { MailboxView } from '../view.js';
import { no, ok, type CommandHandler, type SessionContext, type Tagged } from '../types.js';
import { mailboxArg, wireName } from './mailboxes.js';

const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

interface Qresync {
  uidValidity: number;
  modseq: number;
  known: string | null;
}

function parseSelectParams(ctx: SessionContext, args: Args): { condstore: boolean; qresync: Qresync | null } {
  let condstore = false;
  let qresync: Qresync | null = null;
  if (args.remaining === 0) return { condstore, qresync };
  const params = new Args(args.list('SELECT parameters'));
  while (params.remaining > 0) {
    const name = params.atom('SELECT parameter').toUpperCase();
    if (name === 'CONDSTORE') condstore = true;
    else if (name === 'QRESYNC') {
      if (!ctx.enabled.has('QRESYNC')) throw new ImapParseError('QRESYNC must be enabled first');
      const q = new Args(params.list('QRESYNC parameters'));
      const uidValidity = q.number('UIDVALIDITY');
      const modseq = numberOf(q.atom('mod-sequence'), 'mod-sequence', Number.MAX_SAFE_INTEGER);
      let known: string | null = null;
      if (q.remaining > 0 && q.peek()?.t === 'atom') {
        known = q.atom('known UIDs');
        parseSequenceSet(known);
      }
      if (q.remaining > 0) q.list('sequence match data');
      q.end();
      qresync = { uidValidity, modseq, known };
    } else throw new ImapParseError(`Unknown SELECT parameter ${name.slice(0, 20)}`);
  }
  return { condstore, qresync };
}

function leave(ctx: SessionContext): void {
  if (ctx.view) ctx.send('* OK [CLOSED] Previous mailbox closed\r\n');
  ctx.view = null;
  ctx.watch(null);
  ctx.state = 'auth';
}

function opener(readOnly: boolean): (ctx: SessionContext, cmd: { args: import('../../proto/tokens.js').Token[] }) => Promise<Tagged> {
  return async (ctx, cmd) => {
    const args = new Args(cmd.args);
    const name = mailboxArg(ctx, args);
    const params = parseSelectParams(ctx, args);
    args.end();
    if (params.condstore) ctx.condstore = true;
    leave(ctx);
    const account = ctx.account!;
    const box = await ctx.store.mailboxes.get(account.id, name);
    if (!box) return no('No such mailbox', 'NONEXISTENT');
    // the answer comes from the mailbox row and the distinct flag sets; the view reads its messages on
    // first use, as of this row (view.ts). A change after get() is folded in by the next sync.
    const view = new MailboxView(box, { readOnly });
    ctx.watch(view);
    const cache = viewCacheOf(ctx.store);
    let flagSets = cache.flagSets(box.id, box.highestModseq);
    if (!flagSets) {
      try {
        flagSets = await ctx.store.messages.flagSets(box.id);
      } catch (err) {
        ctx.watch(null);
        throw err;
      }
      // read after the row, they may already show a later change: harmless in a flag list, and a changed
      // mailbox has a new HIGHESTMODSEQ, so the entry is not used for it
      cache.putFlagSets(box.id, box.highestModseq, flagSets);
    }
    const keywords = new Set<string>();
    for (const f of flagSets) for (const k of f) if (!k.startsWith('\\')) keywords.add(k);
    const flags = [...SYSTEM_FLAGS, ...keywords];
    ctx.send(`* FLAGS ${flagList(flags)}\r\n`);
    ctx.send(`* ${view.count} EXISTS\r\n`);
    if (!ctx.enabled.has('IMAP4REV2')) ctx.send('* 0 RECENT\r\n');
    ctx.send(`* OK [UIDVALIDITY ${box.uidValidity}] UIDs valid\r\n`);
    ctx.send(`* OK [UIDNEXT ${view.uidNext}] Predicted next UID\r\n`);
    ctx.send(readOnly ? '* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n' : `* OK [PERMANENTFLAGS ${flagList([...flags, '\\*'])}] Flags permitted\r\n`);
    ctx.send(`* OK [HIGHESTMODSEQ ${view.highestModseq}] Highest\r\n`);
    if (ctx.enabled.has('IMAP4REV2')) ctx.send(`* LIST () "/" ${wireName(ctx, box.name)}\r\n`);
    if (params.qresync && params.qresync.uidValidity === box.uidValidity) {
      await view.load(ctx.store);
      await resync(ctx, view, params.qresync);
    }
    ctx.view = view;
    ctx.state = 'selected';
    return ok(`${readOnly ? 'EXAMINE' : 'SELECT'} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
  };
}

/** QRESYNC (RFC 7162 §3.2.5): what vanished and what changed since the client's modseq. */
async function resync(ctx: SessionContext, view: MailboxView, q: Qresync): Promise<void> {
  const changes = await ctx.store.changes.since(view.id, q.modseq);
  const knownSet = q.known ? parseSequenceSet(q.known) : null;
  let vanished = changes.filter((c) => c.kind === 'expunge' && view.indexOf(c.uid) < 0).map((c) => c.uid);
  if (knownSet && !knownSet.saved) {
    const sorted = [...new Set(vanished)].sort((a, b) => a - b);
    vanished = resolveAgainst(knownSet.ranges, sorted);
  }
  const unique = [...new Set(vanished)].sort((a, b) => a - b);
  if (unique.length > 0) ctx.send(`* VANISHED (EARLIER) ${formatSet(unique)}\r\n`);
  for (let i = 0; i < view.count; i++) {
    if (view.modseqs[i]! > q.modseq) ctx.send(`* ${i + 1} FETCH (UID ${view.uids[i]} FLAGS ${flagList(view.flags[i]!)} MODSEQ (${view.modseqs[i]}))\r\n`);
  }
}

export const select = opener(false);
export const examine = opener(true);

export const close: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  const view = ctx.view!;
  if (!view.readOnly && view.count > 0) await ctx.store.messages.expunge(view.id, view.rangesOf([...Array(view.count).keys()]));
  ctx.view = null;
  ctx.watch(null);
  ctx.state = 'auth';
  return ok('CLOSE completed');
};

export const unselect: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  ctx.view = null;
  ctx.watch(null);
  ctx.state = 'auth';
  return ok('UNSELECT completed');
};

async function expungeIndexes(ctx: SessionContext, indexes: number[]): Promise<Tagged> {
  const view = ctx.view!;
  if (view.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
  if (indexes.length > 0) {
    const uids = await ctx.store.messages.expunge(view.id, view.rangesOf(indexes));
    const removed = view.remove(uids);
    ctx.counters.expunged += removed.uids.length;
    for (const line of MailboxView.expungeLines(removed, ctx.enabled.has('QRESYNC'))) ctx.send(line);
  }
  view.dirty = true;
  if (!ctx.condstore) return ok('EXPUNGE completed');
  const box = await ctx.store.mailboxes.getById(view.id);
  return ok('EXPUNGE completed', `HIGHESTMODSEQ ${Math.max(box?.highestModseq ?? 0, view.highestModseq)}`);
}

export const expunge: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  const view = ctx.view!;
  return expungeIndexes(ctx, [...Array(view.count).keys()]);
};

export const uidExpunge: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const set = parseSequenceSet(args.atom('UID set'));
  args.end();
  const view = ctx.view!;
  const uids = set.saved ? view.saved : resolveAgainst(set.ranges, view.uids);
  return expungeIndexes(ctx, uids.map((u) => view.indexOf(u)).filter((i) => i >= 0).sort((a, b) => a - b));
};

