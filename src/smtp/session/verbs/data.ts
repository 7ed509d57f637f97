/*
 * DATA (RFC 5321 §4.1.1.4): 354, then message bytes through the DATA state machine until <CRLF>.<CRLF>.
 * At the terminator: too big → 552 5.3.4; bare LF/CR from a client outside mynetworks → 550 5.5.2 and
 * nothing kept (smuggling defence, Postfix's smtpd_forbid_bare_newline = reject); otherwise commit.
 * Bytes are kept only while within the size limit; a lost connection mid-DATA commits nothing.
 */
import { DataReader } from '../../proto/data.js';
import { errorReply, protoError } from '../../proto/errors.js';
import { reply } from '../../proto/reply.js';
import { commitMessage, replyToMessage } from '../message.js';
import { BAD_SEQUENCE, NEED_MAIL, NEED_RCPT, NO_VALID_RCPT, SIZE_EXCEEDED } from '../replies.js';
import type { SessionContext, SessionState } from '../types.js';
import type { VerbSpec } from './spec.js';

export const data: VerbSpec<'DATA'> = {
  verb: 'DATA',
  phases: ['mail'],
  refusals: { fresh: NEED_MAIL, ready: NEED_MAIL },
  endsGroup: true,
  handle(ctx) {
    if (ctx.state.phase !== 'mail') return;
    const { tx, helo } = ctx.state;
    if (tx.rcptCommands === 0) return ctx.reply(NEED_RCPT, { sender: tx.sender });
    if (tx.recipients.length === 0) return ctx.reply(NO_VALID_RCPT, { sender: tx.sender });
    if (tx.bdat !== null) return ctx.reply(BAD_SEQUENCE, { sender: tx.sender });
    if (tx.params.body === 'BINARYMIME') return ctx.reply(reply(503, '5.5.1', 'Error: BODY=BINARYMIME requires BDAT'), { sender: tx.sender });
    ctx.state = { phase: 'data', helo, tx, reader: new DataReader(ctx.settings.messageSizeLimit) };
    ctx.reply(reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'));
  },
};

/** Feeds message bytes; returns the offset after what was consumed (after the terminator when done). */
export async function consumeData(ctx: SessionContext, state: Extract<SessionState, { phase: 'data' }>, chunk: Buffer, offset: number): Promise<number> {
  const { reader, tx } = state;
  const result = reader.feed(chunk, offset);
  if (reader.overflow) tx.content.clear();
  else for (const piece of result.pieces) tx.content.push(piece);
  if (result.done) await endOfData(ctx, state);
  return result.next;
}

async function endOfData(ctx: SessionContext, state: Extract<SessionState, { phase: 'data' }>): Promise<void> {
  const { reader, tx, helo } = state;
  if (reader.overflow) {
    ctx.state = { phase: 'ready', helo };
    return replyToMessage(ctx, tx, SIZE_EXCEEDED);
  }
  if ((reader.bareLf || reader.bareCr) && !ctx.peer.trusted) {
    ctx.state = { phase: 'ready', helo };
    return replyToMessage(ctx, tx, errorReply(protoError(reader.bareLf ? 'bare_lf' : 'data_bare_cr')));
  }
  await commitMessage(ctx, helo, tx);
}
