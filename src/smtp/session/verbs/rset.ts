/*
 * RSET (RFC 5321 §4.1.1.5): drops the transaction, keeps HELO/EHLO and authentication.
 */
import { OK } from '../replies.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

export const rset: VerbSpec<'RSET'> = {
  verb: 'RSET',
  phases: ALL_COMMAND_PHASES,
  endsGroup: false,
  handle(ctx) {
    if (ctx.state.phase === 'mail') ctx.state = { phase: 'ready', helo: ctx.state.helo };
    ctx.reply(OK);
  },
};
