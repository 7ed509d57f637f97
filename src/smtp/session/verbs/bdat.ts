/*
 * BDAT (RFC 3030 CHUNKING): exactly `size` raw octets follow the command. They are always read, even when
 * the command is refused, so message bytes are never taken for commands. Each chunk is answered after its
 * octets; the running total past the size limit answers 552 5.3.4 and drops the transaction; LAST commits.
 */
import { BdatChunk, BdatTotal } from '../../proto/bdat.js';
import { reply } from '../../proto/reply.js';
import { commitMessage, replyToMessage } from '../message.js';
import { NEED_MAIL, NEED_RCPT, NO_VALID_RCPT, SIZE_EXCEEDED } from '../replies.js';
import type { BdatOutcome, SessionContext, SessionState } from '../types.js';
import { ALL_COMMAND_PHASES, type CommandOf, type VerbSpec } from './spec.js';

type BdatState = Extract<SessionState, { phase: 'bdat' }>;

function outcomeOf(ctx: SessionContext, cmd: CommandOf<'BDAT'>): BdatOutcome {
  const state = ctx.state;
  const refuse = (r: typeof NEED_MAIL, after: SessionState = state, countsAsError = true): Extract<BdatOutcome, { kind: 'refuse' }> => ({
    kind: 'refuse',
    reply: r,
    after,
    countsAsError,
  });
  if (state.phase !== 'mail') return refuse(NEED_MAIL);
  const { tx, helo } = state;
  if (tx.rcptCommands === 0) return refuse(NEED_RCPT);
  if (tx.recipients.length === 0) return refuse(NO_VALID_RCPT);
  tx.bdat ??= new BdatTotal(ctx.settings.messageSizeLimit);
  if (!tx.bdat.announce(cmd.size)) return { ...refuse(SIZE_EXCEEDED, { phase: 'ready', helo }, false), ended: tx };
  return { kind: 'keep', helo, tx };
}

export const bdat: VerbSpec<'BDAT'> = {
  verb: 'BDAT',
  // refused BDATs are handled here, not by the dispatcher: their octets must be read first
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  async handle(ctx, cmd) {
    const state: BdatState = { phase: 'bdat', chunk: new BdatChunk(cmd.size), last: cmd.last, outcome: outcomeOf(ctx, cmd) };
    ctx.state = state;
    if (cmd.size === 0) await endOfChunk(ctx, state);
  },
};

export async function consumeBdat(ctx: SessionContext, state: BdatState, input: Buffer, offset: number): Promise<number> {
  const read = state.chunk.read(input, offset);
  if (state.outcome.kind === 'keep') state.outcome.tx.content.push(read.piece);
  if (read.done) await endOfChunk(ctx, state);
  return read.next;
}

async function endOfChunk(ctx: SessionContext, state: BdatState): Promise<void> {
  const outcome = state.outcome;
  if (outcome.kind === 'refuse') {
    ctx.state = outcome.after;
    // LMTP answers the last chunk of a message once per recipient, refusals included (RFC 2033 §4.2, RFC 3030 §4)
    if (outcome.ended && state.last) return replyToMessage(ctx, outcome.ended, outcome.reply);
    const tx = outcome.after.phase === 'mail' ? outcome.after.tx : outcome.ended ?? null;
    ctx.reply(outcome.reply, tx ? { sender: tx.sender } : {});
    if (outcome.countsAsError) ctx.protocolError();
    return;
  }
  const { helo, tx } = outcome;
  if (state.last) {
    await commitMessage(ctx, helo, tx);
  } else {
    ctx.state = { phase: 'mail', helo, tx };
    ctx.reply(reply(250, '2.0.0', `Ok: ${state.chunk.size} octets received`));
  }
}
