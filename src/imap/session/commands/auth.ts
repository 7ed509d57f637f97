/*
 * Getting in: STARTTLS (RFC 9051 §6.2.1), LOGIN and AUTHENTICATE PLAIN with SASL-IR (RFC 4959). No
 * credentials over plaintext except on loopback (LOGINDISABLED / PRIVACYREQUIRED). A failure costs a
 * delay; too many per client address or per user name lock the client out for the window. Passwords are
 * never logged.
 */
import { sleep } from '../../../net/clock.js';
import { Args, ImapParseError } from '../../proto/tokens.js';
import { bad, no, ok, type CommandHandler, type SessionContext, type Tagged } from '../types.js';

export const starttls: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  if (ctx.tls) return bad('TLS is already active');
  if (!ctx.settings.starttls) return no('TLS not available');
  ctx.requestTls();
  return ok('Begin TLS negotiation now');
};

export const login: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const user = args.astring('user name');
  const password = args.astring('password');
  args.end();
  if (!ctx.plaintextLoginAllowed()) return no('Login only over TLS', 'PRIVACYREQUIRED');
  return check(ctx, user, password, 'LOGIN');
};

export const authenticate: CommandHandler = async (ctx, cmd) => {
  const args = new Args(cmd.args);
  const mechanism = args.atom('SASL mechanism').toUpperCase();
  const initial = args.remaining > 0 ? args.atom('initial response') : null;
  args.end();
  if (mechanism !== 'PLAIN') return no(`Unsupported mechanism ${mechanism.slice(0, 20)}`, 'CANNOT');
  if (!ctx.plaintextLoginAllowed()) return no('Authentication only over TLS', 'PRIVACYREQUIRED');
  let response = initial;
  if (response === null) {
    ctx.send('+ \r\n');
    await ctx.flush();
    response = await ctx.readRawLine();
    if (response === null) return no('Connection lost');
  }
  if (response === '*') return bad('Authentication cancelled');
  if (response === '=') response = '';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(response) || response.length % 4 !== 0) return bad('Invalid base64 in SASL response');
  const decoded = Buffer.from(response, 'base64').toString('utf8');
  const parts = decoded.split('\0');
  if (parts.length !== 3) return bad('Malformed PLAIN response');
  const [authzid, user, password] = parts as [string, string, string];
  if (authzid !== '' && authzid.toLowerCase() !== user.toLowerCase()) return no('Proxy authorization not allowed', 'AUTHORIZATIONFAILED');
  return check(ctx, user, password, 'PLAIN');
};

async function check(ctx: SessionContext, user: string, password: string, mechanism: string): Promise<Tagged> {
  const now = ctx.clock.now();
  const userKey = user.toLowerCase().slice(0, 320);
  if (ctx.authLimiter.blocked(ctx.peer.address, now) || ctx.userLimiter.blocked(userKey, now)) {
    ctx.log.info({ user: userKey, client: ctx.peer.address, mechanism, status: 'locked' }, 'login');
    await sleep(ctx.clock, ctx.settings.authFailureDelayMs);
    return no('Too many failed logins, try again later', 'UNAVAILABLE');
  }
  if (user.length > 320 || password.length > 1024 || /[\0\r\n]/.test(user)) throw new ImapParseError('Invalid credentials');
  const address = await ctx.authenticate(user, password);
  const account = address ? await ctx.store.directory.getAccount(address) : null;
  if (!account) {
    const blocked = ctx.authLimiter.fail(ctx.peer.address, ctx.clock.now());
    ctx.userLimiter.fail(userKey, ctx.clock.now());
    ctx.log.info({ user: userKey, client: ctx.peer.address, mechanism, status: 'failed' }, 'login');
    await sleep(ctx.clock, ctx.settings.authFailureDelayMs);
    if (blocked) {
      ctx.send('* BYE Too many failed logins\r\n');
      ctx.state = 'logout';
    }
    return no('Authentication failed', 'AUTHENTICATIONFAILED');
  }
  if (!ctx.loggedIn(account, mechanism)) return no('Too many sessions for this user', 'LIMIT');
  return ok('Logged in', `CAPABILITY ${ctx.capabilities()}`);
}
