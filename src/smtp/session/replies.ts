/*
 * Fixed replies of the session, in one place so the wording is consistent (Postfix's where it has one).
 * Data only; replies built from runtime values (host name, queue id, limits) are made by functions here.
 */
import { reply, type Reply } from '../proto/reply.js';

export const OK = reply(250, '2.0.0', 'Ok');
export const SEND_HELO = reply(503, '5.5.1', 'Error: send HELO/EHLO first');
export const NEED_MAIL = reply(503, '5.5.1', 'Error: need MAIL command');
export const NESTED_MAIL = reply(503, '5.5.1', 'Error: nested MAIL command');
export const NEED_RCPT = reply(503, '5.5.1', 'Error: need RCPT command');
export const NO_VALID_RCPT = reply(554, '5.5.1', 'Error: no valid recipients');
export const BAD_SEQUENCE = reply(503, '5.5.1', 'Error: bad sequence of commands');
export const AUTH_REQUIRED = reply(530, '5.7.0', 'Authentication required');
export const TOO_MANY_RCPT = reply(452, '4.5.3', 'Error: too many recipients');
export const SIZE_EXCEEDED = reply(552, '5.3.4', 'Error: message file too big');
export const TEMP_FAILURE = reply(451, '4.3.0', 'Error: temporary failure, try again later');
export const COMMIT_FAILED = reply(451, '4.3.0', 'Error: queue file write error');
export const RELAY_DENIED = (address: string): Reply => reply(554, '5.7.1', `<${address}>: Relay access denied`);

export const shuttingDown = (host: string): Reply => reply(421, '4.3.2', `${host} Service shutting down, closing transmission channel`);
export const timeoutExceeded = (host: string): Reply => reply(421, '4.4.2', `${host} Error: timeout exceeded`);
export const tooManyErrors = (host: string): Reply => reply(421, '4.7.0', `${host} Error: too many errors`);
export const tooManyAuthFailures = (host: string): Reply => reply(421, '4.7.0', `${host} Error: too many authentication failures`);
export const greeting = (host: string, lmtp: boolean): Reply => reply(220, undefined, `${host} ${lmtp ? 'LMTP' : 'ESMTP'} Cartero`);
export const USE_LHLO = reply(500, '5.5.1', 'Error: this is an LMTP server, say LHLO');
export const UNKNOWN_COMMAND = reply(500, '5.5.2', 'Error: command not recognized');
