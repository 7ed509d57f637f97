/*
 * HELO and EHLO (RFC 5321 §4.1.1.1): start a new session state (any transaction is dropped) and, for
 * EHLO, advertise the extensions this session can use right now. AUTH is listed only over TLS or from
 * loopback; STARTTLS only while TLS can still start. Never consults policy: the name is recorded, not judged.
 */
import { reply } from '../../proto/reply.js';
import type { SessionContext } from '../types.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

/** AUTH may be used on this connection now (RFC 4954 §4 and the security baseline). */
export function authOffered(ctx: SessionContext): boolean {
  return (ctx.tls || ctx.peer.loopback) && ctx.authUser === null;
}

export function ehloKeywords(ctx: SessionContext): string[] {
  const keywords = ['PIPELINING', `SIZE ${ctx.settings.messageSizeLimit}`];
  if (ctx.settings.starttls && !ctx.tls) keywords.push('STARTTLS');
  if (authOffered(ctx)) keywords.push('AUTH PLAIN LOGIN');
  keywords.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING');
  return keywords;
}

export const ehlo: VerbSpec<'EHLO'> = {
  verb: 'EHLO',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx, cmd) {
    ctx.state = { phase: 'ready', helo: { name: cmd.domain, esmtp: true } };
    ctx.reply(reply(250, undefined, ctx.settings.hostname, ...ehloKeywords(ctx)));
  },
};

export const helo: VerbSpec<'HELO'> = {
  verb: 'HELO',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx, cmd) {
    ctx.state = { phase: 'ready', helo: { name: cmd.domain, esmtp: false } };
    ctx.reply(reply(250, undefined, ctx.settings.hostname));
  },
};
