/*
 * ETRN (RFC 1985): a client that holds mail for a domain we queue for (a primary MX back after an
 * outage) asks us to start delivering it now. Only clients in mynetworks or authenticated may ask, and
 * only for relay domains (the service decides that); the answer is 250 (started), 251 (nothing waiting),
 * 458 (cannot start now), 459 (not allowed). Not on LMTP, and 502 when the node has no queue to flush.
 * Named queues ("ETRN #name") are not supported: 458. Never waits for the deliveries themselves.
 */
import { reply } from '../../proto/reply.js';
import { SEND_HELO, UNKNOWN_COMMAND } from '../replies.js';
import type { VerbSpec } from './spec.js';

export const NOT_IMPLEMENTED = reply(502, '5.5.1', 'Error: command not implemented');
export const ETRN_IN_TRANSACTION = reply(503, '5.5.1', 'Error: MAIL transaction in progress');

export const etrn: VerbSpec<'ETRN'> = {
  verb: 'ETRN',
  phases: ['ready'],
  refusals: { fresh: SEND_HELO, mail: ETRN_IN_TRANSACTION },
  endsGroup: false,
  async handle(ctx, cmd) {
    if (ctx.state.phase !== 'ready') return;
    if (ctx.settings.lmtp) {
      ctx.reply(UNKNOWN_COMMAND);
      return ctx.protocolError();
    }
    const flush = ctx.services.flushDomain?.bind(ctx.services);
    if (!flush) {
      ctx.reply(NOT_IMPLEMENTED);
      return ctx.protocolError();
    }
    const target = cmd.target;
    if (target.kind === 'queue') return ctx.reply(reply(458, '4.3.0', `Unable to queue messages for node #${target.name}: named queues are not supported`));
    const node = `${target.subdomains ? '@' : ''}${target.domain}`;
    if (!ctx.peer.trusted && ctx.authUser === null) {
      ctx.reply(reply(459, '4.7.1', `Node ${node} not allowed: client not authorized`));
      return ctx.protocolError();
    }
    let started: number | null;
    try {
      started = await flush(target.domain, { subdomains: target.subdomains, client: ctx.clientInfo(ctx.state.helo) });
    } catch (err) {
      ctx.log.error({ err, etrn: node }, 'ETRN failed');
      return ctx.reply(reply(458, '4.3.0', `Unable to queue messages for node ${node}`));
    }
    if (started === null) return ctx.reply(reply(459, '4.7.1', `Node ${node} not allowed: not a relay domain of this server`));
    ctx.log.info({ etrn: node, entries: started, user: ctx.authUser ?? undefined }, `ETRN ${node}: ${started} queue entr${started === 1 ? 'y' : 'ies'} due now`);
    ctx.reply(started === 0 ? reply(251, '2.0.0', `OK, no messages waiting for node ${node}`) : reply(250, '2.0.0', `Queuing for node ${node} started`));
  },
};
