/*
 * NOOP (RFC 5321 §4.1.1.9): no effect on any state; arguments are ignored as the RFC requires.
 */
import { OK } from '../replies.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

export const noop: VerbSpec<'NOOP'> = {
  verb: 'NOOP',
  phases: ALL_COMMAND_PHASES,
  endsGroup: false,
  handle(ctx) {
    ctx.reply(OK);
  },
};
