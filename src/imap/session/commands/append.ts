/*
 * APPEND with flags and date, MULTIAPPEND (RFC 3502) and APPENDUID (RFC 4315). The literal has been
 * read whole by the command reader (bounded by APPENDLIMIT before a byte was accepted), so a client that
 * disconnects mid-APPEND never reaches here and nothing is stored. A MULTIAPPEND is all or nothing: on a
 * failure the messages already appended by this command are expunged again. The MIME structure is parsed
 * here once and stored beside the message.
 */
import { parseStructure, serializeStructure } from '../../../mime/index.js';
import type { NewMessage } from '../../../store/index.js';
import { parseDateTime } from '../../proto/dates.js';
import { isFlag } from '../../proto/search.js';
import { formatOrderedSet } from '../../proto/sequence.js';
import { Args, ImapParseError } from '../../proto/tokens.js';
import { no, ok, type CommandHandler } from '../types.js';
import { mailboxArg } from './mailboxes.js';

const SYSTEM = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];
const MAX_MESSAGES = 1000;

interface Item {
  flags: string[];
  date: number | null;
  content: Buffer;
}

export const append: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const name = mailboxArg(ctx, args);
  const items: Item[] = [];
  while (args.remaining > 0) {
    if (items.length >= MAX_MESSAGES) throw new ImapParseError('Too many messages in one APPEND');
    let flags: string[] = [];
    let date: number | null = null;
    if (args.peek()?.t === 'list') {
      flags = args.list('flags').map((t) => {
        if (t.t !== 'atom' || !isFlag(t.v)) throw new ImapParseError('Invalid flag');
        const sys = SYSTEM.find((s) => s.toLowerCase() === t.v.toLowerCase());
        if (t.v.startsWith('\\') && !sys) throw new ImapParseError(`Flag ${t.v.slice(0, 30)} cannot be appended`);
        return sys ?? t.v;
      });
    }
    const next = args.peek();
    if (next?.t === 'string' && !next.literal) {
      args.next('date-time');
      date = parseDateTime(next.v.toString('latin1'));
    }
    const lit = args.next('message literal');
    if (lit.t !== 'string' || !lit.literal) throw new ImapParseError('Expected the message as a literal');
    if (lit.v.length === 0) return no('Empty message', 'CANNOT');
    items.push({ flags: [...new Set(flags)], date, content: lit.v });
  }
  if (items.length === 0) throw new ImapParseError('Missing message literal');
  const box = await ctx.store.mailboxes.get(ctx.account!.id, name);
  if (!box) return no('No such mailbox', 'TRYCREATE');
  const uids: number[] = [];
  let uidValidity = box.uidValidity;
  try {
    for (const item of items) {
      const message: NewMessage & { structure?: string } = {
        content: item.content,
        flags: item.flags,
        internalDate: item.date ?? ctx.clock.now(),
        structure: serializeStructure(parseStructure(item.content)),
      };
      const res = await ctx.store.messages.append(box.id, message, ctx.clock.now());
      uids.push(res.uid);
      uidValidity = res.uidValidity;
    }
  } catch (err) {
    if (uids.length > 0) {
      const ranges = uids.map((u) => ({ from: u, to: u }));
      await ctx.store.messages.setFlags(box.id, ranges, 'add', ['\\Deleted']).catch(() => undefined);
      await ctx.store.messages.expunge(box.id, ranges).catch(() => undefined);
    }
    throw err;
  }
  ctx.counters.appended += uids.length;
  if (ctx.view && ctx.view.id === box.id) ctx.view.dirty = true;
  return ok('APPEND completed', `APPENDUID ${uidValidity} ${formatOrderedSet(uids)}`);
};
