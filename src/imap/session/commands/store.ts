/*
 * Changing messages: STORE / UID STORE (+FLAGS, -FLAGS, FLAGS, .SILENT, UNCHANGEDSINCE from RFC 7162),
 * COPY / UID COPY and MOVE / UID MOVE (RFC 6851) with UIDPLUS COPYUID (RFC 4315). Store calls name only
 * UIDs of this session's view, and the view is updated from what the store returns.
 */
import { isFlag } from '../../proto/search.js';
import { flagList } from '../../proto/response.js';
import { formatOrderedSet } from '../../proto/sequence.js';
import { Args, ImapParseError, numberOf } from '../../proto/tokens.js';
import { MailboxView } from '../view.js';
import { no, ok, type CommandHandler, type SessionContext } from '../types.js';
import { resolveSet } from './fetch.js';
import { mailboxArg } from './mailboxes.js';

const MAX_FLAGS = 100;

function parseFlags(args: Args): string[] {
  const t = args.next('flags');
  const tokens = t.t === 'list' ? t.v : [t, ...drain(args)];
  if (tokens.length > MAX_FLAGS) throw new ImapParseError('Too many flags');
  return tokens.map((f) => {
    if (f.t !== 'atom' || !isFlag(f.v)) throw new ImapParseError('Invalid flag');
    const lower = f.v.toLowerCase();
    if (lower === '\\recent') throw new ImapParseError('\\Recent cannot be stored');
    const system = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'].find((s) => s.toLowerCase() === lower);
    if (f.v.startsWith('\\') && !system) throw new ImapParseError(`Unknown system flag ${f.v.slice(0, 30)}`);
    return system ?? f.v;
  });
}

function drain(args: Args): ReturnType<Args['next']>[] {
  const out = [];
  while (args.remaining > 0) out.push(args.next('flag'));
  return out;
}

function storer(byUid: boolean): CommandHandler {
  return async (ctx, cmd) => {
    const args = new Args(cmd.args);
    const setText = args.atom('sequence set');
    let unchangedSince: number | undefined;
    if (args.peek()?.t === 'list') {
      const mods = new Args(args.list('STORE modifiers'));
      if (mods.atom('STORE modifier').toUpperCase() !== 'UNCHANGEDSINCE') throw new ImapParseError('Unknown STORE modifier');
      unchangedSince = numberOf(mods.atom('mod-sequence'), 'UNCHANGEDSINCE', Number.MAX_SAFE_INTEGER);
      mods.end();
      ctx.condstore = true;
    }
    const m = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(args.atom('STORE item'));
    if (!m) throw new ImapParseError('Expected FLAGS, +FLAGS or -FLAGS');
    const flags = parseFlags(args);
    args.end();
    const view = ctx.view!;
    const indexes = resolveSet(ctx, setText, byUid);
    if (!Array.isArray(indexes)) return indexes;
    if (view.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
    const silent = m[2] !== undefined;
    const operation = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'replace';
    const live = indexes.filter((i) => !view.pendingExpunge.has(view.uids[i]!));
    const res = live.length === 0 ? { updated: [], modified: [] } : await ctx.store.messages.setFlags(view.id, view.rangesOf(live), operation, flags, unchangedSince === undefined ? {} : { unchangedSince });
    const changed = new Set<number>();
    for (const u of res.updated) {
      const i = view.indexOf(u.uid);
      if (i < 0) continue;
      view.setFlags(i, u.flags, u.modseq);
      changed.add(i);
    }
    const modified = new Set(res.modified);
    for (const i of indexes) {
      const uid = view.uids[i]!;
      if (modified.has(uid)) continue;
      // .SILENT suppresses the echo, but with UNCHANGEDSINCE the new MODSEQ is still reported (RFC 7162 §3.1.3)
      if (silent && !(ctx.condstore && changed.has(i))) continue;
      if (silent && unchangedSince === undefined) continue;
      const uidItem = byUid || ctx.enabled.has('QRESYNC') ? `UID ${uid} ` : '';
      const modseq = ctx.condstore ? ` MODSEQ (${view.modseqs[i]})` : '';
      ctx.send(`* ${i + 1} FETCH (${uidItem}FLAGS ${flagList(view.flags[i]!)}${modseq})\r\n`);
    }
    if (modified.size > 0) {
      const list = byUid ? [...modified].sort((a, b) => a - b) : [...modified].map((u) => view.indexOf(u) + 1).filter((s) => s > 0).sort((a, b) => a - b);
      return ok('Some messages were modified meanwhile', `MODIFIED ${formatOrderedSet(list)}`);
    }
    return ok(`${byUid ? 'UID STORE' : 'STORE'} completed`);
  };
}

export const store = storer(false);
export const uidStore = storer(true);

function copier(byUid: boolean, move: boolean): CommandHandler {
  return async (ctx, cmd) => {
    const args = new Args(cmd.args);
    const setText = args.atom('sequence set');
    const target = mailboxArg(ctx, args);
    args.end();
    const view = ctx.view!;
    const indexes = resolveSet(ctx, setText, byUid);
    if (!Array.isArray(indexes)) return indexes;
    if (move && view.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
    const dest = await ctx.store.mailboxes.get(ctx.account!.id, target);
    if (!dest) return no('No such mailbox', 'TRYCREATE');
    const verb = `${byUid ? 'UID ' : ''}${move ? 'MOVE' : 'COPY'}`;
    const live = indexes.filter((i) => !view.pendingExpunge.has(view.uids[i]!));
    if (live.length === 0) return ok(`${verb} completed`);
    const ranges = view.rangesOf(live);
    const now = ctx.clock.now();
    const res = move ? await ctx.store.messages.move(view.id, ranges, dest.id, now) : await ctx.store.messages.copy(view.id, ranges, dest.id, now);
    const code = res.uids.length > 0 ? `COPYUID ${res.uidValidity} ${formatOrderedSet(res.uids.map((p) => p[0]))} ${formatOrderedSet(res.uids.map((p) => p[1]))}` : undefined;
    if (!move) return ok(`${verb} completed`, code);
    if (code) ctx.send(`* OK [${code}] Moved\r\n`);
    const removed = view.remove(res.uids.map((p) => p[0]));
    ctx.counters.expunged += removed.uids.length;
    for (const line of MailboxView.expungeLines(removed, ctx.enabled.has('QRESYNC'))) ctx.send(line);
    view.dirty = true;
    return ok(`${verb} completed`);
  };
}

export const copy = copier(false, false);
export const uidCopy = copier(true, false);
export const move = copier(false, true);
export const uidMove = copier(true, true);

export type { SessionContext };
