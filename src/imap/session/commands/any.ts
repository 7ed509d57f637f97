/*
 * Commands valid in every state (RFC 9051 §6.1) and the small negotiation commands: CAPABILITY, NOOP,
 * LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342).
 */
import { Args, ImapParseError } from '../../proto/tokens.js';
import { imapString } from '../../proto/response.js';
import { ok, type CommandHandler, type Enableable } from '../types.js';

export const capability: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  ctx.send(`* CAPABILITY ${ctx.capabilities()}\r\n`);
  return ok('CAPABILITY completed');
};

export const noop: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  // NOOP is how clients poll: look at the store, not only at the change feed. Every change raises the
  // mailbox's HIGHESTMODSEQ, so one key lookup says whether there are changes to read; expunges read
  // earlier but held back (during FETCH, STORE, SEARCH) are announced now.
  const view = ctx.view;
  if (view) {
    const box = await ctx.store.mailboxes.getById(view.id);
    if (!box || box.highestModseq > view.modseq || view.pendingExpunge.size > 0) view.dirty = true;
  }
  return ok('NOOP completed');
};

export const logout: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  ctx.send('* BYE Logging out\r\n');
  ctx.state = 'logout';
  return ok('LOGOUT completed');
};

const MAX_ID_PAIRS = 30;

export const id: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const t = args.next('ID parameters');
  args.end();
  const fields: Record<string, string | null> = {};
  if (t.t === 'list') {
    if (t.v.length % 2 !== 0 || t.v.length > MAX_ID_PAIRS * 2) throw new ImapParseError('Invalid ID parameter list');
    for (let i = 0; i < t.v.length; i += 2) {
      const k = t.v[i]!;
      const v = t.v[i + 1]!;
      if (k.t !== 'string' || (v.t !== 'string' && !(v.t === 'atom' && v.v.toUpperCase() === 'NIL'))) throw new ImapParseError('Invalid ID parameter');
      fields[k.v.toString('utf8').slice(0, 30)] = v.t === 'string' ? v.v.toString('utf8').slice(0, 1024) : null;
    }
  } else if (!(t.t === 'atom' && t.v.toUpperCase() === 'NIL')) {
    throw new ImapParseError('Expected a parameter list or NIL');
  }
  if (Object.keys(fields).length > 0) ctx.log.info({ id: fields }, 'client id');
  ctx.send(`* ID (${imapString('name')} ${imapString('Cartero')} ${imapString('vendor')} ${imapString('Cartero')})\r\n`);
  return ok('ID completed');
};

const ENABLEABLE: readonly Enableable[] = ['IMAP4REV2', 'CONDSTORE', 'QRESYNC', 'UTF8=ACCEPT'];

export const enable: CommandHandler = async (ctx, cmd) => {
  if (cmd.args.length === 0) throw new ImapParseError('ENABLE needs at least one capability');
  const now: string[] = [];
  for (const t of cmd.args) {
    if (t.t !== 'atom') throw new ImapParseError('Invalid capability name');
    const name = t.v.toUpperCase() as Enableable;
    if (!ENABLEABLE.includes(name)) continue;
    if (ctx.enabled.has(name)) continue;
    ctx.enabled.add(name);
    if (name === 'QRESYNC') ctx.enabled.add('CONDSTORE');
    if (name === 'CONDSTORE' || name === 'QRESYNC') ctx.condstore = true;
    now.push(name === 'IMAP4REV2' ? 'IMAP4rev2' : name);
  }
  ctx.send(`* ENABLED${now.map((n) => ` ${n}`).join('')}\r\n`);
  return ok('ENABLE completed');
};

export const namespace: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  ctx.send('* NAMESPACE (("" "/")) NIL NIL\r\n');
  return ok('NAMESPACE completed');
};
