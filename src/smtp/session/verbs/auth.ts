/*
 * AUTH PLAIN and LOGIN (RFC 4954) through services.authenticate. Offered only over TLS or from loopback;
 * refused during a transaction or once authenticated. Each failure is delayed, and after too many per
 * client address (counted by the server, across sessions) the client is disconnected with 421 4.7.0.
 * A failing credential store answers 454 4.7.0, never a success.
 */
import { AUTH_LINE_LIMIT } from '../../proto/command.js';
import { reply } from '../../proto/reply.js';
import { decodeSaslResponse, encodeChallenge, parsePlain } from '../../proto/sasl.js';
import { sleep } from '../../../net/clock.js';
import { SEND_HELO, tooManyAuthFailures } from '../replies.js';
import type { Helo, SaslStep, SessionContext } from '../types.js';
import { authOffered } from './helo.js';
import type { VerbSpec } from './spec.js';

const ABORTED = reply(501, '5.0.0', 'Authentication aborted');
const CANNOT_DECODE = reply(501, '5.5.2', 'Error: cannot decode response');

export const auth: VerbSpec<'AUTH'> = {
  verb: 'AUTH',
  phases: ['ready'],
  refusals: { fresh: SEND_HELO, mail: reply(503, '5.5.1', 'Error: MAIL transaction in progress') },
  endsGroup: true,
  async handle(ctx, cmd) {
    if (ctx.state.phase !== 'ready') return;
    const helo = ctx.state.helo;
    if (ctx.authUser !== null) return ctx.reply(reply(503, '5.5.1', 'Error: already authenticated'));
    if (!authOffered(ctx)) return ctx.reply(reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'));
    if (ctx.authLimiter.blocked(ctx.peer.address, ctx.clock.now())) return ctx.close(tooManyAuthFailures(ctx.settings.hostname));
    if (cmd.mechanism !== 'PLAIN' && cmd.mechanism !== 'LOGIN') return ctx.reply(reply(504, '5.5.4', 'Unrecognized authentication type'));
    const step: SaslStep = cmd.mechanism === 'PLAIN' ? { mechanism: 'PLAIN' } : { mechanism: 'LOGIN', user: null };
    if (cmd.initial === null) return challenge(ctx, helo, step);
    await respond(ctx, helo, step, cmd.initial);
  },
};

function challenge(ctx: SessionContext, helo: Helo, step: SaslStep): void {
  ctx.state = { phase: 'auth', helo, step };
  ctx.setLineLimit(AUTH_LINE_LIMIT);
  const text = step.mechanism === 'PLAIN' ? '' : encodeChallenge(step.user === null ? 'Username:' : 'Password:');
  ctx.reply(reply(334, undefined, text));
}

/** Ends the exchange (phase `auth`) and returns what it was waiting for. */
export function endExchange(ctx: SessionContext): { helo: Helo; step: SaslStep } | null {
  if (ctx.state.phase !== 'auth') return null;
  const { helo, step } = ctx.state;
  ctx.state = { phase: 'ready', helo };
  ctx.setLineLimit(ctx.settings.maxCommandLine);
  return { helo, step };
}

/** A client response line during the exchange (phase `auth`). */
export async function continueAuth(ctx: SessionContext, line: string): Promise<void> {
  const exchange = endExchange(ctx);
  if (!exchange) return;
  if (line === '*') return ctx.reply(ABORTED);
  await respond(ctx, exchange.helo, exchange.step, line);
}

async function respond(ctx: SessionContext, helo: Helo, step: SaslStep, encoded: string): Promise<void> {
  const text = decodeSaslResponse(encoded);
  if (text === null) return ctx.reply(CANNOT_DECODE);
  if (step.mechanism === 'LOGIN') {
    if (step.user === null) return challenge(ctx, helo, { mechanism: 'LOGIN', user: text });
    return verify(ctx, step.user, text);
  }
  const creds = parsePlain(text);
  // We act for nobody else: an authorization identity other than the login itself is a failure.
  if (creds === null || (creds.authzid !== '' && creds.authzid !== creds.authcid)) return failed(ctx, creds?.authcid ?? '');
  return verify(ctx, creds.authcid, creds.password);
}

async function verify(ctx: SessionContext, user: string, password: string): Promise<void> {
  let account: string | null;
  try {
    account = await ctx.services.authenticate(user, password);
  } catch (err) {
    ctx.log.error({ err, user }, 'authentication backend failed');
    return ctx.reply(reply(454, '4.7.0', 'Temporary authentication failure'), { user });
  }
  if (account === null) return failed(ctx, user);
  ctx.authUser = account;
  ctx.log.info({ user: account, status: 'authenticated' }, 'auth');
  ctx.reply(reply(235, '2.7.0', 'Authentication successful'));
}

async function failed(ctx: SessionContext, user: string): Promise<void> {
  await sleep(ctx.clock, ctx.settings.authFailureDelayMs);
  if (ctx.authLimiter.fail(ctx.peer.address, ctx.clock.now())) {
    ctx.log.warn({ user, status: 'auth_limit' }, 'too many authentication failures');
    return ctx.close(tooManyAuthFailures(ctx.settings.hostname));
  }
  ctx.reply(reply(535, '5.7.8', 'Error: authentication failed'), { user });
}
