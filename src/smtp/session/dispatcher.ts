/*
 * The dispatcher: the only place that checks a command line against the session state and limits before
 * a verb module runs. Order: bare LF from untrusted clients (refused, disconnect), framing errors, AUTH
 * continuation lines, shutdown (421), parse, phase check (503), handler. Every refusal counts toward
 * the error limit; a BDAT whose size cannot be parsed closes the connection (its octets cannot be skipped). Returns the verb for the session's statistics; never throws for client input.
 */
import type { Command, Verb } from '../proto/command.js';
import { parseCommand } from '../proto/command.js';
import { errorReply, protoError, type ProtoErrorKind } from '../proto/errors.js';
import type { LineError, LineEvent } from '../../net/line-reader.js';
import { BAD_SEQUENCE, shuttingDown } from './replies.js';
import type { SessionContext } from './types.js';
import { auth, continueAuth, endExchange } from './verbs/auth.js';
import { bdat } from './verbs/bdat.js';
import { data } from './verbs/data.js';
import { ehlo, helo, lhlo } from './verbs/helo.js';
import { etrn } from './verbs/etrn.js';
import { help } from './verbs/help.js';
import { mail } from './verbs/mail.js';
import { noop } from './verbs/noop.js';
import { quit } from './verbs/quit.js';
import { rcpt } from './verbs/rcpt.js';
import { rset } from './verbs/rset.js';
import type { CommandPhase, VerbSpec } from './verbs/spec.js';
import { starttls } from './verbs/starttls.js';
import { vrfy } from './verbs/vrfy.js';

const REGISTRY: { [V in Verb]: VerbSpec<V> } = {
  HELO: helo,
  EHLO: ehlo,
  LHLO: lhlo,
  MAIL: mail,
  RCPT: rcpt,
  DATA: data,
  BDAT: bdat,
  AUTH: auth,
  VRFY: vrfy,
  HELP: help,
  RSET: rset,
  NOOP: noop,
  QUIT: quit,
  STARTTLS: starttls,
  ETRN: etrn,
};

export interface Dispatched {
  /** verb name for statistics ("UNKNOWN" for garbage) */
  verb: string;
  /** the replies so far must be written now (RFC 2920 group boundary) */
  endsGroup: boolean;
}

function isCommandPhase(phase: string): phase is CommandPhase {
  return phase === 'fresh' || phase === 'ready' || phase === 'mail';
}

const LINE_ERRORS: Record<LineError, ProtoErrorKind> = { too_long: 'line_too_long', bare_cr: 'bare_cr', control: 'control_char', bad_utf8: 'bad_utf8' };

export async function dispatchLine(ctx: SessionContext, event: LineEvent): Promise<Dispatched> {
  if (event.bareLf && !ctx.peer.trusted) {
    ctx.close(errorReply(protoError('bare_lf')));
    return { verb: 'UNKNOWN', endsGroup: true };
  }
  if (event.kind === 'error') {
    // a malformed response line also ends an AUTH exchange (RFC 4954 §4: the exchange fails)
    endExchange(ctx);
    ctx.reply(errorReply(protoError(LINE_ERRORS[event.error])));
    ctx.protocolError();
    return { verb: 'UNKNOWN', endsGroup: false };
  }
  if (ctx.state.phase === 'auth') {
    await continueAuth(ctx, event.text);
    return { verb: 'AUTH', endsGroup: true };
  }
  if (ctx.draining) {
    ctx.close(shuttingDown(ctx.settings.hostname));
    return { verb: 'UNKNOWN', endsGroup: true };
  }
  const tx = ctx.state.phase === 'mail' ? ctx.state.tx : null;
  const parsed = parseCommand(event.text, { smtputf8: tx?.params.smtputf8 ?? false, lmtp: ctx.settings.lmtp });
  if (!parsed.ok) {
    ctx.reply(errorReply(parsed.error), tx ? { sender: tx.sender } : {});
    // A BDAT whose size cannot be read leaves unknown octets on the wire: they must never become commands.
    if (parsed.verb === 'BDAT') ctx.close();
    else ctx.protocolError();
    return { verb: parsed.verb, endsGroup: parsed.verb === 'BDAT' };
  }
  return run(ctx, parsed.command);
}

async function run(ctx: SessionContext, command: Command): Promise<Dispatched> {
  // One spec per verb: the registry's mapped type guarantees spec and command agree.
  const spec = REGISTRY[command.verb] as VerbSpec<Verb>;
  const phase = ctx.state.phase;
  if (!isCommandPhase(phase) || !spec.phases.includes(phase)) {
    ctx.reply((isCommandPhase(phase) ? spec.refusals?.[phase] : undefined) ?? BAD_SEQUENCE);
    ctx.protocolError();
    return { verb: command.verb, endsGroup: false };
  }
  await spec.handle(ctx, command);
  return { verb: command.verb, endsGroup: spec.endsGroup };
}
