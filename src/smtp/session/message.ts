/*
 * The end of a mail transaction, shared by DATA and BDAT: prepends our Received: line (and, on submission,
 * a missing Date:/Message-ID:), builds the envelope with its DSN and client details, and commits through
 * services.commit. The 250 is queued only after the commit resolved; any failure answers 451 4.3.0 and
 * the transaction is gone either way (the client retries; nothing half-done is acknowledged).
 */
import { headerFieldNames } from '../proto/headers.js';
import { reply } from '../proto/reply.js';
import { receivedHeader, rfc5322Date, withProtocol } from '../proto/trace.js';
import type { Envelope } from '../services.js';
import { COMMIT_FAILED } from './replies.js';
import type { Helo, SessionContext, Transaction } from './types.js';

function protocolOf(ctx: SessionContext, helo: Helo, tx: Transaction): string {
  return withProtocol({ esmtp: helo.esmtp, tls: ctx.tls, auth: ctx.authUser !== null, utf8: tx.params.smtputf8 });
}

/** Header lines we add in front of the client's message. */
export function addedHeaders(ctx: SessionContext, helo: Helo, tx: Transaction, body: Buffer, id: string): string {
  const date = new Date(ctx.clock.now());
  const only = tx.recipients.length === 1 ? (tx.recipients[0]?.address ?? null) : null;
  let out = receivedHeader({
    helo: helo.name,
    clientAddress: ctx.peer.address,
    hostname: ctx.settings.hostname,
    protocol: protocolOf(ctx, helo, tx),
    id,
    recipient: only,
    date,
  });
  if (ctx.settings.submission) {
    const present = headerFieldNames(body);
    if (!present.has('date')) out += `Date: ${rfc5322Date(date)}\r\n`;
    if (!present.has('message-id')) out += `Message-ID: <${id}.${ctx.newId()}@${ctx.settings.hostname}>\r\n`;
  }
  return out;
}

export function envelopeOf(ctx: SessionContext, helo: Helo, tx: Transaction, id: string): Envelope {
  const p = tx.params;
  return {
    sender: tx.sender,
    recipients: tx.recipients,
    meta: {
      client: ctx.peer.address,
      client_port: ctx.peer.port,
      helo: helo.name,
      protocol: protocolOf(ctx, helo, tx),
      auth_user: ctx.authUser,
      tls: ctx.tls,
      listener: ctx.settings.listener,
      received_id: id,
      ret: p.ret,
      envid: p.envid,
      body: p.body,
      smtputf8: p.smtputf8,
    },
  };
}

/** Commits the transaction and answers; leaves the session in the `ready` phase. */
export async function commitMessage(ctx: SessionContext, helo: Helo, tx: Transaction): Promise<void> {
  const id = ctx.newId();
  const body = tx.content.toBuffer();
  const content = Buffer.concat([Buffer.from(addedHeaders(ctx, helo, tx, body, id), 'utf8'), body]);
  const envelope = envelopeOf(ctx, helo, tx, id);
  ctx.state = { phase: 'ready', helo };
  try {
    const { queueId } = await ctx.services.commit(envelope, content);
    ctx.log.info(
      { queue_id: queueId, sender: tx.sender, nrcpt: tx.recipients.length, size: content.length, status: 'queued' },
      'queued',
    );
    ctx.reply(reply(250, '2.0.0', `Ok: queued as ${queueId}`));
  } catch (err) {
    ctx.log.error({ err, sender: tx.sender, nrcpt: tx.recipients.length }, 'queue commit failed');
    ctx.reply(COMMIT_FAILED, { sender: tx.sender });
  }
}
