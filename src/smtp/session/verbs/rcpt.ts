/*
 * RCPT TO (RFC 5321 §4.1.1.3 with DSN NOTIFY/ORCPT): asks policy about each recipient and answers its
 * verdict. Bounded per message (452 4.5.3). An address-literal domain is never a relay loophole: refused
 * (554 5.7.1) unless the client is trusted or authenticated. A policy failure answers 451, never 250.
 * The bare <Postmaster> every SMTP server must accept (RFC 5321 §4.5.1) becomes postmaster@ our first
 * domain, like Postfix's $myorigin, so policy and aliases treat it as any other address.
 * In maintenance (smtp.tempfail at rcpt) every RCPT gets the configured 4xx.
 */
import { reply } from '../../proto/reply.js';
import { NEED_MAIL, RELAY_DENIED, TEMP_FAILURE, TOO_MANY_RCPT } from '../replies.js';
import { tempfailAt } from '../tempfail.js';
import type { Transaction } from '../types.js';
import type { CommandOf, VerbSpec } from './spec.js';

export const rcpt: VerbSpec<'RCPT'> = {
  verb: 'RCPT',
  phases: ['mail'],
  refusals: { fresh: NEED_MAIL, ready: NEED_MAIL },
  endsGroup: false,
  async handle(ctx, cmd) {
    if (ctx.state.phase !== 'mail') return;
    const { tx, helo } = ctx.state;
    tx.rcptCommands++;
    const recipient = cmd.recipient.domain === null ? `postmaster@${ctx.settings.postmasterDomain}` : cmd.recipient.address;
    const fields = { sender: tx.sender, recipient };
    const maintenance = tempfailAt(ctx, 'rcpt');
    if (maintenance) return ctx.reply(maintenance, fields);
    if (tx.recipients.length >= ctx.settings.maxRecipients) return ctx.reply(TOO_MANY_RCPT, fields);
    if (cmd.recipient.literal && !ctx.peer.trusted && ctx.authUser === null) return ctx.reply(RELAY_DENIED(recipient), fields);
    let verdict;
    try {
      verdict = await ctx.services.checkRecipient({ client: ctx.clientInfo(helo), sender: tx.sender, recipient });
    } catch (err) {
      ctx.log.error({ err, recipient }, 'recipient check failed');
      return ctx.reply(TEMP_FAILURE, fields);
    }
    if (verdict.action === 'reject') return ctx.reply(reply(verdict.code, verdict.enhanced, verdict.text), fields);
    addRecipient(tx, recipient, cmd);
    ctx.reply(reply(250, '2.1.5', 'Ok'));
  },
};

function addRecipient(tx: Transaction, address: string, cmd: CommandOf<'RCPT'>): void {
  // The same address twice is one delivery; the client still gets its 250.
  if (tx.recipients.some((r) => r.address === address)) return;
  tx.recipients.push({ address, orcpt: cmd.params.orcpt, notify: cmd.params.notify });
}
