/*
 * MAIL FROM (RFC 5321 §4.1.1.2 with SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH= parameters): opens a
 * transaction once policy accepts the sender. Submission listeners require AUTH first (530 5.7.0); a
 * declared SIZE over the limit is refused here (552 5.3.4). A policy failure is a 451, never an accept.
 * In maintenance (smtp.tempfail at mail) every MAIL gets the configured 4xx.
 */
import { reply } from '../../proto/reply.js';
import { MessageContent } from '../content.js';
import { AUTH_REQUIRED, NESTED_MAIL, SEND_HELO, TEMP_FAILURE } from '../replies.js';
import { tempfailAt } from '../tempfail.js';
import type { Helo, SessionContext } from '../types.js';
import type { VerbSpec } from './spec.js';

export const mail: VerbSpec<'MAIL'> = {
  verb: 'MAIL',
  phases: ['ready'],
  refusals: { fresh: SEND_HELO, mail: NESTED_MAIL },
  endsGroup: false,
  async handle(ctx, cmd) {
    if (ctx.state.phase !== 'ready') return;
    const helo = ctx.state.helo;
    const sender = cmd.sender?.address ?? '';
    if (ctx.settings.submission && ctx.authUser === null) return ctx.reply(AUTH_REQUIRED, { sender });
    const maintenance = tempfailAt(ctx, 'mail');
    if (maintenance) return ctx.reply(maintenance, { sender });
    if (cmd.params.size !== null && cmd.params.size > ctx.settings.messageSizeLimit) {
      return ctx.reply(reply(552, '5.3.4', 'Message size exceeds fixed limit'), { sender });
    }
    const verdict = await askSender(ctx, sender, helo);
    if (verdict === null) return ctx.reply(TEMP_FAILURE, { sender });
    if (verdict.action === 'reject') return ctx.reply(reply(verdict.code, verdict.enhanced, verdict.text), { sender });
    if (ctx.state.phase !== 'ready') return;
    ctx.state = {
      phase: 'mail',
      helo,
      tx: { sender, params: cmd.params, recipients: [], rcptCommands: 0, content: new MessageContent(), bdat: null },
    };
    ctx.reply(reply(250, '2.1.0', 'Ok'));
  },
};

async function askSender(ctx: SessionContext, sender: string, helo: Helo) {
  try {
    return await ctx.services.checkSender({ client: ctx.clientInfo(helo), sender });
  } catch (err) {
    ctx.log.error({ err, sender }, 'sender check failed');
    return null;
  }
}
