/*
 * HELP (RFC 5321 §4.1.1.8): a fixed 214 naming the supported commands; topics are not looked up.
 */
import { reply } from '../../proto/reply.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

export const help: VerbSpec<'HELP'> = {
  verb: 'HELP',
  phases: ALL_COMMAND_PHASES,
  endsGroup: false,
  handle(ctx) {
    ctx.reply(reply(214, '2.0.0', 'Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH'));
  },
};
