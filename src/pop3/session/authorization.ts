/*
 * The AUTHORIZATION state (RFC 1939 §4, RFC 5034 AUTH PLAIN, RFC 2595 STLS): USER/PASS and AUTH PLAIN
 * (with an initial response, a "+ " continuation, "*" to cancel) end in one login path that checks the
 * password, locks the maildrop and takes its snapshot. Plaintext logins are refused outside TLS except
 * from loopback. Each failed login is delayed and counted per client address; past the limit the client
 * is disconnected. A failing store answers -ERR [SYS/TEMP], never a login.
 */
import { sleep } from '../../net/clock.js';
import { isStoreError } from '../../store/index.js';
import { decodeSaslResponse, parsePlain } from '../../smtp/proto/sasl.js';
import { openMaildrop } from '../maildrop.js';
import { continuation, err, multiline, ok } from '../proto/reply.js';
import type { SessionContext } from './types.js';

export const MECHANISMS = ['PLAIN'] as const;

const AUTH_FAILED = err('Authentication failed', 'AUTH');
const TOO_MANY_FAILURES = err('Too many authentication failures from your address, try again later', 'AUTH');

/** Why a plaintext login is refused here, or null when it is allowed. */
function plaintextRefusal(ctx: SessionContext): string | null {
  if (ctx.plaintextAllowed()) return null;
  if (ctx.settings.tlsAvailable) return err('Plaintext authentication is disallowed on non-secure connections: use STLS first', 'AUTH');
  return err('Plaintext authentication is disallowed on non-secure connections and this server has no TLS', 'SYS/PERM');
}

export function user(ctx: SessionContext, name: string): void {
  const refusal = plaintextRefusal(ctx);
  if (refusal) return ctx.send(refusal);
  ctx.state = { phase: 'authorization', user: name };
  ctx.send(ok('Send PASS'));
}

export async function pass(ctx: SessionContext, password: string): Promise<void> {
  if (ctx.state.phase !== 'authorization' || ctx.state.user === null) {
    ctx.send(err('Send USER first'));
    return ctx.badCommand();
  }
  const name = ctx.state.user;
  ctx.state = { phase: 'authorization', user: null };
  await login(ctx, name, password, 'USER');
}

export async function auth(ctx: SessionContext, mechanism: string | null, initial: string | null): Promise<void> {
  if (mechanism === null) return ctx.send(multiline('Supported SASL mechanisms follow', MECHANISMS));
  if (mechanism !== 'PLAIN') return ctx.send(err('Unsupported authentication mechanism'));
  const refusal = plaintextRefusal(ctx);
  if (refusal) return ctx.send(refusal);
  if (initial !== null) return respond(ctx, initial);
  ctx.state = { phase: 'sasl' };
  ctx.setLineLimit(ctx.settings.maxAuthLine);
  ctx.send(continuation());
}

/** Ends a SASL exchange (phase `sasl`) without a result: back to AUTHORIZATION with the command limit. */
export function endExchange(ctx: SessionContext): void {
  if (ctx.state.phase !== 'sasl') return;
  ctx.state = { phase: 'authorization', user: null };
  ctx.setLineLimit(ctx.settings.maxCommandLine);
}

/** The client's response line to "+ " (phase `sasl`). */
export async function saslResponse(ctx: SessionContext, line: string): Promise<void> {
  endExchange(ctx);
  if (line === '*') return ctx.send(err('Authentication cancelled'));
  await respond(ctx, line);
}

async function respond(ctx: SessionContext, encoded: string): Promise<void> {
  const text = decodeSaslResponse(encoded);
  if (text === null) {
    ctx.send(err('Invalid base64 in the SASL response'));
    return ctx.badCommand();
  }
  const creds = parsePlain(text);
  // We act for nobody else: an authorization identity other than the login itself is a failure.
  if (creds === null || (creds.authzid !== '' && creds.authzid !== creds.authcid)) return failed(ctx, creds?.authcid ?? '', 'PLAIN');
  await login(ctx, creds.authcid, creds.password, 'PLAIN');
}

async function login(ctx: SessionContext, name: string, password: string, method: string): Promise<void> {
  const { services, peer, clock } = ctx;
  if (services.authLimiter.blocked(peer.address, clock.now())) {
    ctx.log.warn({ user: name, status: 'auth_limit' }, 'login refused: too many authentication failures');
    return ctx.close(TOO_MANY_FAILURES, 'auth_limit');
  }
  let address: string | null;
  try {
    address = await services.authenticate(name, password);
  } catch (e) {
    ctx.log.error({ err: e, user: name }, 'authentication backend failed');
    return ctx.send(err('Authentication service unavailable, try again later', 'SYS/TEMP'));
  }
  if (address === null) return failed(ctx, name, method);
  let opened;
  try {
    opened = await openMaildrop(services.store, services.locks, address);
  } catch (e) {
    ctx.log.error({ err: e, user: address }, 'cannot open maildrop');
    const code = isStoreError(e, 'corrupt') ? 'SYS/PERM' : 'SYS/TEMP';
    return ctx.send(err('Cannot open the maildrop, try again later', code));
  }
  if (opened.kind === 'missing') {
    ctx.log.warn({ user: address, status: 'no_maildrop' }, 'login refused: no INBOX');
    return ctx.send(err('This account has no maildrop (INBOX)', 'SYS/PERM'));
  }
  if (opened.kind === 'in_use') {
    ctx.log.info({ user: address, status: 'in_use' }, 'login refused: maildrop locked');
    return ctx.send(err('Maildrop is locked by another POP3 session', 'IN-USE'));
  }
  const drop = opened.maildrop;
  if (ctx.closing) {
    // the client went away while we looked: nothing was read, nothing to keep
    await drop.close();
    return;
  }
  ctx.state = { phase: 'transaction', drop };
  const { count, size } = drop.stat();
  ctx.log.info({ user: address, status: 'login', method, tls: ctx.tls, messages: count, size }, 'login');
  ctx.send(ok(`Logged in, ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
}

async function failed(ctx: SessionContext, name: string, method: string): Promise<void> {
  await sleep(ctx.clock, ctx.settings.authFailureDelayMs);
  ctx.log.info({ user: name, status: 'auth_failed', method }, 'authentication failed');
  if (ctx.services.authLimiter.fail(ctx.peer.address, ctx.clock.now())) {
    ctx.log.warn({ user: name, status: 'auth_limit' }, 'too many authentication failures');
    return ctx.close(TOO_MANY_FAILURES, 'auth_limit');
  }
  ctx.send(AUTH_FAILED);
}

export function stls(ctx: SessionContext): void {
  if (ctx.tls) return ctx.send(err('Command not permitted when TLS is active'));
  if (!ctx.settings.tlsAvailable) return ctx.send(err('STLS is not available on this server'));
  ctx.send(ok('Begin TLS negotiation'));
  ctx.startTls();
}

/** RFC 2449 CAPA; login capabilities only in AUTHORIZATION, and only where a plaintext login is allowed. */
export function capa(ctx: SessionContext): void {
  const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (ctx.state.phase === 'authorization') {
    if (ctx.plaintextAllowed()) caps.push('USER', `SASL ${MECHANISMS.join(' ')}`);
    if (ctx.settings.tlsAvailable && !ctx.tls) caps.push('STLS');
  }
  caps.push('IMPLEMENTATION Cartero');
  ctx.send(multiline('Capability list follows', caps));
}
