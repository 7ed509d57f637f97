/*
 * QUIT (RFC 5321 §4.1.1.10): 221 and close. An open transaction is simply dropped.
 */
import { reply } from '../../proto/reply.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

export const quit: VerbSpec<'QUIT'> = {
  verb: 'QUIT',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx) {
    ctx.quit(reply(221, '2.0.0', 'Bye'));
  },
};
