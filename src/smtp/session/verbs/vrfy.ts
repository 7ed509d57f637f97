/*
 * VRFY (RFC 5321 §3.5.3): off, as in Postfix's disable_vrfy_command. Always 252 so that the directory
 * cannot be enumerated through it; never asks policy.
 */
import { reply } from '../../proto/reply.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

export const vrfy: VerbSpec<'VRFY'> = {
  verb: 'VRFY',
  phases: ALL_COMMAND_PHASES,
  endsGroup: false,
  handle(ctx) {
    ctx.reply(reply(252, '2.5.2', 'Cannot VRFY user'));
  },
};
