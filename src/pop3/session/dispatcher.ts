/*
 * The only place that checks a command line against the session state before a handler runs. Order:
 * framing errors (which also end a SASL exchange), SASL response lines, parse, state check, handler.
 * Queued answers are written before a command that waits (PASS, AUTH, QUIT; RETR and TOP only when the
 * message was not read ahead, see transaction.ts).
 * Every refusal of client input counts as a bad command (the session closes past the limit). Returns
 * the verb for statistics; never throws for anything a client sends.
 */
import { parseCommand, type Command, type Verb } from '../proto/command.js';
import type { LineError, LineEvent } from '../../net/line-reader.js';
import { err, ok } from '../proto/reply.js';
import { auth, capa, endExchange, pass, saslResponse, stls, user } from './authorization.js';
import { dele, list, noop, quit, retr, rset, stat, top, uidl } from './transaction.js';
import type { Phase, SessionContext } from './types.js';

const AUTHORIZATION: readonly Phase[] = ['authorization'];
const TRANSACTION: readonly Phase[] = ['transaction'];
const BOTH: readonly Phase[] = ['authorization', 'transaction'];

/** RFC 1939 / 2449 / 2595 / 5034: the states each command is valid in. */
const STATES: { [V in Verb]: readonly Phase[] } = {
  USER: AUTHORIZATION,
  PASS: AUTHORIZATION,
  AUTH: AUTHORIZATION,
  STLS: AUTHORIZATION,
  CAPA: BOTH,
  QUIT: BOTH,
  STAT: TRANSACTION,
  LIST: TRANSACTION,
  UIDL: TRANSACTION,
  RETR: TRANSACTION,
  DELE: TRANSACTION,
  TOP: TRANSACTION,
  RSET: TRANSACTION,
  NOOP: TRANSACTION,
};

const SLOW: ReadonlySet<Verb> = new Set<Verb>(['PASS', 'AUTH', 'QUIT']);

const CONTROL = err('Control characters are not allowed in commands');
// a bare LF ends a command as CRLF does (POP3 carries no data upstream: nothing to smuggle); a CR
// anywhere but before the LF is a control character like any other
const LINE_ERRORS: Record<LineError, string> = {
  too_long: err('Command line too long'),
  bare_cr: CONTROL,
  control: CONTROL,
  bad_utf8: err('Command is not valid UTF-8'),
};

export async function dispatchLine(ctx: SessionContext, event: LineEvent): Promise<string> {
  if (event.kind === 'error') {
    const exchange = ctx.state.phase === 'sasl';
    endExchange(ctx);
    ctx.send(exchange && event.error === 'too_long' ? err('SASL response too long') : LINE_ERRORS[event.error]);
    ctx.badCommand();
    return 'UNKNOWN';
  }
  if (ctx.state.phase === 'sasl') {
    ctx.flush();
    await saslResponse(ctx, event.text);
    return 'AUTH';
  }
  const parsed = parseCommand(event.text);
  if (!parsed.ok) {
    ctx.send(parsed.error.kind === 'unknown' ? err('Unknown command') : err(parsed.error.text));
    ctx.badCommand();
    return parsed.error.kind === 'unknown' ? 'UNKNOWN' : parsed.error.verb;
  }
  const { command } = parsed;
  if (!STATES[command.verb].includes(ctx.state.phase)) {
    ctx.send(err(`${command.verb} is not valid in the ${ctx.state.phase === 'transaction' ? 'TRANSACTION' : 'AUTHORIZATION'} state`));
    ctx.badCommand();
    return command.verb;
  }
  // answers queued for earlier pipelined commands go out before one that waits on the store or the clock
  if (SLOW.has(command.verb)) ctx.flush();
  await run(ctx, command);
  return command.verb;
}

async function run(ctx: SessionContext, c: Command): Promise<void> {
  switch (c.verb) {
    case 'USER':
      return user(ctx, c.name);
    case 'PASS':
      return pass(ctx, c.password);
    case 'AUTH':
      return auth(ctx, c.mechanism, c.initial);
    case 'STLS':
      return stls(ctx);
    case 'CAPA':
      return capa(ctx);
    case 'QUIT':
      if (ctx.state.phase === 'transaction') return quit(ctx);
      return ctx.close(ok('Bye'), 'quit');
    case 'STAT':
      return stat(ctx);
    case 'LIST':
      return list(ctx, c.msg);
    case 'UIDL':
      return uidl(ctx, c.msg);
    case 'RETR':
      return retr(ctx, c.msg);
    case 'DELE':
      return dele(ctx, c.msg);
    case 'TOP':
      return top(ctx, c.msg, c.lines);
    case 'RSET':
      return rset(ctx);
    case 'NOOP':
      return noop(ctx);
  }
}
