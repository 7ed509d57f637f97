/*
 * STARTTLS (RFC 3207): 220, then the stream belongs to TLS. Everything the client pipelined after the
 * command is discarded by the session, and after the handshake the session starts over (no HELO, no
 * transaction, no authentication): nothing learnt in plaintext survives into the TLS session.
 */
import { reply } from '../../proto/reply.js';
import type { VerbSpec } from './spec.js';

export const starttls: VerbSpec<'STARTTLS'> = {
  verb: 'STARTTLS',
  phases: ['fresh', 'ready'],
  refusals: { mail: reply(503, '5.5.1', 'Error: MAIL transaction in progress') },
  endsGroup: true,
  handle(ctx) {
    if (ctx.tls) return ctx.reply(reply(554, '5.5.1', 'Error: TLS already active'));
    if (!ctx.settings.starttls) return ctx.reply(reply(502, '5.5.1', 'Error: command not implemented'));
    ctx.reply(reply(220, '2.0.0', 'Ready to start TLS'));
    ctx.flush();
    ctx.startTls();
  },
};
