/*
 * Mailbox management: LIST (RFC 9051, LIST-EXTENDED 5258, SPECIAL-USE 6154, LIST-STATUS 5819), LSUB,
 * CREATE (with USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS and QUOTA (RFC 9208).
 * Every name is decoded and validated at the edge and every store call carries the session's own
 * account id, so a user can only ever name their own mailboxes.
 */
import type { Mailbox } from '../../../store/index.js';
import { decodeMailboxName, encodeMailboxName, SEPARATOR, validateMailboxName } from '../../proto/mailbox-name.js';
import { astring } from '../../proto/response.js';
import { Args, astringOf, ImapParseError, type Token } from '../../proto/tokens.js';
import { no, ok, type CommandHandler, type SessionContext } from '../types.js';

const SPECIAL_USES = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'];

/** A mailbox argument, decoded and validated. */
export function mailboxArg(ctx: SessionContext, args: Args, what = 'mailbox name'): string {
  const name = decodeMailboxName(args.astring(what), ctx.utf8);
  validateMailboxName(name);
  return name;
}

export function wireName(ctx: SessionContext, name: string): string {
  return astring(encodeMailboxName(name, ctx.utf8), ctx.utf8);
}

function accountId(ctx: SessionContext): number {
  if (!ctx.account) throw new Error('not authenticated');
  return ctx.account.id;
}

// ------------------------------------------------------------------ LIST / LSUB

/** Compiles a LIST pattern (`*` any, `%` any but the separator) into a RegExp. */
export function patternRegex(pattern: string): RegExp {
  let re = '^';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '%') re += '[^/]*';
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

interface ListOptions {
  subscribedOnly: boolean;
  recursiveMatch: boolean;
  specialUseOnly: boolean;
  returnSubscribed: boolean;
  returnChildren: boolean;
  returnSpecialUse: boolean;
  status: string[] | null;
  lsub: boolean;
}

export const list: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const o: ListOptions = { subscribedOnly: false, recursiveMatch: false, specialUseOnly: false, returnSubscribed: false, returnChildren: true, returnSpecialUse: true, status: null, lsub: false };
  const first = args.peek();
  if (first?.t === 'list') {
    for (const t of args.list('selection options')) {
      const opt = atomOf(t, 'selection option');
      if (opt === 'SUBSCRIBED') o.subscribedOnly = o.returnSubscribed = true;
      else if (opt === 'RECURSIVEMATCH') o.recursiveMatch = true;
      else if (opt === 'SPECIAL-USE') o.specialUseOnly = true;
      else if (opt === 'REMOTE') continue;
      else throw new ImapParseError(`Unknown LIST selection option ${opt.slice(0, 20)}`);
    }
    if (o.recursiveMatch && !o.subscribedOnly) throw new ImapParseError('RECURSIVEMATCH needs another selection option');
  }
  const reference = decodeReference(ctx, args.astring('reference'));
  const patterns: string[] = [];
  const p = args.next('mailbox pattern');
  if (p.t === 'list') {
    if (p.v.length === 0) throw new ImapParseError('Empty pattern list');
    for (const t of p.v) patterns.push(astringOf(t, 'mailbox pattern'));
  } else {
    patterns.push(astringOf(p, 'mailbox pattern'));
  }
  if (args.optionalWord('RETURN')) {
    const opts = args.list('return options');
    for (let i = 0; i < opts.length; i++) {
      const opt = atomOf(opts[i]!, 'return option');
      if (opt === 'SUBSCRIBED') o.returnSubscribed = true;
      else if (opt === 'CHILDREN') o.returnChildren = true;
      else if (opt === 'SPECIAL-USE') o.returnSpecialUse = true;
      else if (opt === 'STATUS') {
        const items = opts[++i];
        if (!items || items.t !== 'list') throw new ImapParseError('STATUS needs a list of status items');
        o.status = parseStatusItems(items.v);
      } else throw new ImapParseError(`Unknown LIST return option ${opt.slice(0, 20)}`);
    }
  }
  args.end();
  return doList(ctx, reference, patterns, o);
};

function atomOf(t: Token, what: string): string {
  if (t.t !== 'atom') throw new ImapParseError(`Invalid ${what}`);
  return t.v.toUpperCase();
}

function decodeReference(ctx: SessionContext, ref: string): string {
  if (ref === '' || ctx.utf8) return ref;
  return decodeMailboxNameLoose(ref);
}

export const lsub: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const reference = decodeReference(ctx, args.astring('reference'));
  const pattern = args.astring('mailbox pattern');
  args.end();
  return doList(ctx, reference, [pattern], { subscribedOnly: true, recursiveMatch: false, specialUseOnly: false, returnSubscribed: false, returnChildren: false, returnSpecialUse: false, status: null, lsub: true });
};

async function doList(ctx: SessionContext, reference: string, patterns: string[], o: ListOptions) {
  const verb = o.lsub ? 'LSUB' : 'LIST';
  if (patterns.length === 1 && patterns[0] === '' && !o.lsub) {
    ctx.send(`* LIST (\\Noselect) "${SEPARATOR}" ""\r\n`);
    return ok('LIST completed');
  }
  const boxes = await ctx.store.mailboxes.list(accountId(ctx));
  const byName = new Map(boxes.map((b) => [b.name, b]));
  // every existing name plus its implied parents
  const names = new Set<string>();
  for (const b of boxes) {
    const levels = b.name.split(SEPARATOR);
    for (let i = 1; i <= levels.length; i++) names.add(levels.slice(0, i).join(SEPARATOR));
  }
  const hasChildren = (name: string): boolean => {
    const prefix = name + SEPARATOR;
    for (const n of names) if (n.startsWith(prefix)) return true;
    return false;
  };
  const subscribedChild = (name: string): boolean => boxes.some((b) => b.subscribed && b.name.startsWith(name + SEPARATOR));
  const regexes = patterns.map((p) => {
    const decoded = ctx.utf8 ? p : decodeMailboxNameLoose(p);
    const full = reference && !decoded.startsWith(SEPARATOR) ? reference + (reference.endsWith(SEPARATOR) ? '' : SEPARATOR) + decoded : decoded;
    return patternRegex(full.toUpperCase().startsWith('INBOX') ? 'INBOX' + full.slice(5) : full);
  });
  const matches = (name: string): boolean => regexes.some((r) => r.test(name));
  const sorted = [...names].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  let count = 0;
  for (const name of sorted) {
    if (!matches(name)) continue;
    const box = byName.get(name);
    const attrs: string[] = [];
    let childInfo = false;
    if (o.subscribedOnly && !box?.subscribed) {
      if (o.recursiveMatch && subscribedChild(name)) childInfo = true;
      else if (o.lsub && subscribedChild(name) && patterns.some((p) => p.endsWith('%'))) attrs.push('\\Noselect');
      else continue;
    }
    if (o.specialUseOnly && !box?.specialUse) continue;
    if (!box) attrs.push(o.lsub ? '\\Noselect' : '\\NonExistent');
    if (!o.lsub && o.returnChildren) attrs.push(hasChildren(name) ? '\\HasChildren' : '\\HasNoChildren');
    if (!o.lsub && o.returnSubscribed && box?.subscribed) attrs.push('\\Subscribed');
    if (!o.lsub && (o.returnSpecialUse || o.specialUseOnly) && box?.specialUse) attrs.push(box.specialUse);
    const extra = childInfo ? ' ("CHILDINFO" ("SUBSCRIBED"))' : '';
    ctx.send(`* ${verb} (${[...new Set(attrs)].join(' ')}) "${SEPARATOR}" ${wireName(ctx, name)}${extra}\r\n`);
    if (o.status && box) ctx.send(statusLine(ctx, box, o.status, await deletedCount(ctx, box, o.status)));
    if (++count % 500 === 0) await ctx.flush();
  }
  return ok(`${verb} completed`);
}

function decodeMailboxNameLoose(p: string): string {
  try {
    return decodeMailboxName(p, false);
  } catch {
    return p;
  }
}

// ------------------------------------------------------------------ STATUS

const STATUS_ITEMS = ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'RECENT', 'HIGHESTMODSEQ'];

function parseStatusItems(tokens: Token[]): string[] {
  if (tokens.length === 0) throw new ImapParseError('Empty status item list');
  return tokens.map((t) => {
    const item = atomOf(t, 'status item');
    if (!STATUS_ITEMS.includes(item)) throw new ImapParseError(`Unknown status item ${item.slice(0, 20)}`);
    return item;
  });
}

async function deletedCount(ctx: SessionContext, box: Mailbox, items: string[]): Promise<number> {
  if (!items.includes('DELETED')) return 0;
  const index = await ctx.store.messages.index(box.id);
  const deleted = index.flagSets.map((f) => f.includes('\\Deleted'));
  return index.flags.filter((f) => deleted[f]).length;
}

function statusLine(ctx: SessionContext, box: Mailbox, items: string[], deleted: number): string {
  const values = items.map((item) => {
    switch (item) {
      case 'MESSAGES':
        return `MESSAGES ${box.messages}`;
      case 'UIDNEXT':
        return `UIDNEXT ${box.uidNext}`;
      case 'UIDVALIDITY':
        return `UIDVALIDITY ${box.uidValidity}`;
      case 'UNSEEN':
        return `UNSEEN ${box.unseen}`;
      case 'DELETED':
        return `DELETED ${deleted}`;
      case 'SIZE':
        return `SIZE ${box.size}`;
      case 'RECENT':
        return 'RECENT 0';
      default:
        return `HIGHESTMODSEQ ${box.highestModseq}`;
    }
  });
  return `* STATUS ${wireName(ctx, box.name)} (${values.join(' ')})\r\n`;
}

export const status: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const name = mailboxArg(ctx, args);
  const items = parseStatusItems(args.list('status items'));
  args.end();
  if (items.includes('HIGHESTMODSEQ')) ctx.condstore = true;
  const box = await ctx.store.mailboxes.get(accountId(ctx), name);
  if (!box) return no('No such mailbox', 'NONEXISTENT');
  // the selected mailbox: our own view may be ahead of what the store says only by our own writes
  ctx.send(statusLine(ctx, box, items, await deletedCount(ctx, box, items)));
  return ok('STATUS completed');
};

// ------------------------------------------------------------------ CREATE / DELETE / RENAME / SUBSCRIBE

export const create: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  let raw = decodeMailboxName(args.astring('mailbox name'), ctx.utf8);
  // RFC 9051 §6.3.4: a trailing separator only declares the intent to create children
  if (raw.endsWith(SEPARATOR) && raw.length > 1) raw = raw.slice(0, -1);
  validateMailboxName(raw);
  let specialUse: string | null = null;
  if (args.remaining > 0) {
    const params = new Args(args.list('CREATE parameters'));
    while (params.remaining > 0) {
      const p = params.atom('CREATE parameter').toUpperCase();
      if (p !== 'USE') throw new ImapParseError(`Unknown CREATE parameter ${p.slice(0, 20)}`);
      const uses = params.list('special-use list');
      if (uses.length !== 1) return no('Exactly one special use per mailbox', 'USEATTR');
      const use = uses[0]!;
      const found = use.t === 'atom' ? SPECIAL_USES.find((s) => s.toLowerCase() === use.v.toLowerCase()) : undefined;
      if (!found) return no('Unsupported special use', 'USEATTR');
      specialUse = found;
    }
  }
  args.end();
  if (raw === 'INBOX') return no('INBOX always exists', 'ALREADYEXISTS');
  const id = accountId(ctx);
  if (await ctx.store.mailboxes.get(id, raw)) return no('Mailbox already exists', 'ALREADYEXISTS');
  // superior names are created as needed (RFC 9051 §6.3.4)
  const levels = raw.split(SEPARATOR);
  for (let i = 1; i < levels.length; i++) {
    const parent = levels.slice(0, i).join(SEPARATOR);
    if (!(await ctx.store.mailboxes.get(id, parent))) await ctx.store.mailboxes.create(id, parent, { subscribed: false });
  }
  await ctx.store.mailboxes.create(id, raw, { specialUse, subscribed: false });
  return ok('CREATE completed');
};

export const del: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const name = mailboxArg(ctx, args);
  args.end();
  if (name === 'INBOX') return no('INBOX cannot be deleted', 'CANNOT');
  const id = accountId(ctx);
  if (!(await ctx.store.mailboxes.get(id, name))) return no('No such mailbox', 'NONEXISTENT');
  if (ctx.view && ctx.view.mailbox.name === name) {
    // deleting the selected mailbox: leave it first (RFC 9051 allows either; this keeps the view sane)
    ctx.view = null;
    ctx.watch(null);
    ctx.state = 'auth';
    ctx.send('* OK [CLOSED] Mailbox deleted\r\n');
  }
  await ctx.store.mailboxes.delete(id, name);
  return ok('DELETE completed');
};

export const rename: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const from = mailboxArg(ctx, args, 'existing mailbox name');
  const to = mailboxArg(ctx, args, 'new mailbox name');
  args.end();
  const id = accountId(ctx);
  if (to === 'INBOX' || to.startsWith('INBOX/')) return no('Cannot rename to INBOX', 'CANNOT');
  if (from === to) return no('Same name', 'ALREADYEXISTS');
  if (to.startsWith(from + SEPARATOR)) return no('Cannot rename a mailbox into itself', 'CANNOT');
  const source = await ctx.store.mailboxes.get(id, from);
  if (!source) return no('No such mailbox', 'NONEXISTENT');
  if (await ctx.store.mailboxes.get(id, to)) return no('Target mailbox exists', 'ALREADYEXISTS');
  const levels = to.split(SEPARATOR);
  for (let i = 1; i < levels.length; i++) {
    const parent = levels.slice(0, i).join(SEPARATOR);
    if (!(await ctx.store.mailboxes.get(id, parent))) await ctx.store.mailboxes.create(id, parent, { subscribed: false });
  }
  if (from === 'INBOX') {
    // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name and leaves INBOX empty
    const target = await ctx.store.mailboxes.create(id, to, { subscribed: false });
    await ctx.store.messages.move(source.id, [{ from: 1, to: Number.MAX_SAFE_INTEGER }], target.id, ctx.clock.now());
    return ok('RENAME completed');
  }
  await ctx.store.mailboxes.rename(id, from, to, { separator: SEPARATOR });
  return ok('RENAME completed');
};

function subscription(on: boolean): CommandHandler {
  return async (ctx, cmd) => {
    const args = new Args(cmd.args);
    const name = mailboxArg(ctx, args);
    args.end();
    const id = accountId(ctx);
    if (!(await ctx.store.mailboxes.get(id, name))) return no('No such mailbox', 'NONEXISTENT');
    await ctx.store.mailboxes.setSubscribed(id, name, on);
    return ok(`${on ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} completed`);
  };
}
export const subscribe = subscription(true);
export const unsubscribe = subscription(false);

// ------------------------------------------------------------------ QUOTA (RFC 9208)

async function quotaLine(ctx: SessionContext): Promise<string> {
  const q = await ctx.store.messages.quota(accountId(ctx));
  const used = Math.ceil(q.bytes / 1024);
  return q.limitBytes === null ? '* QUOTA "" ()\r\n' : `* QUOTA "" (STORAGE ${used} ${Math.floor(q.limitBytes / 1024)})\r\n`;
}

export const getquotaroot: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const name = mailboxArg(ctx, args);
  args.end();
  if (!(await ctx.store.mailboxes.get(accountId(ctx), name))) return no('No such mailbox', 'NONEXISTENT');
  ctx.send(`* QUOTAROOT ${wireName(ctx, name)} ""\r\n`);
  ctx.send(await quotaLine(ctx));
  return ok('GETQUOTAROOT completed');
};

export const getquota: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const root = args.astring('quota root');
  args.end();
  if (root !== '') return no('No such quota root', 'NONEXISTENT');
  ctx.send(await quotaLine(ctx));
  return ok('GETQUOTA completed');
};

export const setquota: CommandHandler = async () => no('Quotas are set by the administrator', 'NOPERM');

