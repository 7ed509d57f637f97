/*
 * HELO, EHLO and LMTP's LHLO (RFC 5321 §4.1.1.1, RFC 2033 §4.1): start a new session state (any
 * transaction is dropped) and, for EHLO/LHLO, advertise the extensions this session can use right now.
 * AUTH is listed only over TLS or from loopback, and never on LMTP (its clients are MTAs we trust by
 * network); STARTTLS only while TLS can still start. An LMTP listener refuses HELO/EHLO and an SMTP one
 * LHLO, so a client talking the wrong protocol fails at once instead of at the end of DATA.
 * Never consults policy: the name is recorded, not judged.
 */
import { reply } from '../../proto/reply.js';
import { UNKNOWN_COMMAND, USE_LHLO } from '../replies.js';
import type { SessionContext } from '../types.js';
import { ALL_COMMAND_PHASES, type VerbSpec } from './spec.js';

/** AUTH may be used on this connection now (RFC 4954 §4 and the security baseline). */
export function authOffered(ctx: SessionContext): boolean {
  return (ctx.tls || ctx.peer.loopback) && ctx.authUser === null && !ctx.settings.lmtp;
}

export function ehloKeywords(ctx: SessionContext): string[] {
  const keywords = ['PIPELINING', `SIZE ${ctx.settings.messageSizeLimit}`];
  if (ctx.settings.starttls && !ctx.tls) keywords.push('STARTTLS');
  if (authOffered(ctx)) keywords.push('AUTH PLAIN LOGIN');
  // XQUEUEID: MAIL FROM may carry the client's queue id, the key of duplicate suppression (docs/xqueueid.md)
  keywords.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'XQUEUEID', 'CHUNKING');
  if (ctx.services.flushDomain && !ctx.settings.lmtp) keywords.push('ETRN');
  return keywords;
}

/** false (after refusing) when the greeting verb does not belong to this listener's protocol */
function rightProtocol(ctx: SessionContext, lmtpVerb: boolean): boolean {
  if (ctx.settings.lmtp === lmtpVerb) return true;
  ctx.reply(lmtpVerb ? UNKNOWN_COMMAND : USE_LHLO);
  ctx.protocolError();
  return false;
}

export const ehlo: VerbSpec<'EHLO'> = {
  verb: 'EHLO',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx, cmd) {
    if (!rightProtocol(ctx, false)) return;
    ctx.state = { phase: 'ready', helo: { name: cmd.domain, esmtp: true } };
    ctx.reply(reply(250, undefined, ctx.settings.hostname, ...ehloKeywords(ctx)));
  },
};

export const helo: VerbSpec<'HELO'> = {
  verb: 'HELO',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx, cmd) {
    if (!rightProtocol(ctx, false)) return;
    ctx.state = { phase: 'ready', helo: { name: cmd.domain, esmtp: false } };
    ctx.reply(reply(250, undefined, ctx.settings.hostname));
  },
};

export const lhlo: VerbSpec<'LHLO'> = {
  verb: 'LHLO',
  phases: ALL_COMMAND_PHASES,
  endsGroup: true,
  handle(ctx, cmd) {
    if (!rightProtocol(ctx, true)) return;
    ctx.state = { phase: 'ready', helo: { name: cmd.domain, esmtp: true } };
    ctx.reply(reply(250, undefined, ctx.settings.hostname, ...ehloKeywords(ctx)));
  },
};
