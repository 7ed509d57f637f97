/*
 * The end of a mail transaction, shared by DATA and BDAT: prepends our Received: line (and, on submission,
 * a missing Date:/Message-ID:), builds the envelope with its DSN and client details, and commits through
 * services.commit — or, on LMTP, delivers through services.deliver and answers once per recipient.
 * A 250 is queued only after the commit resolved; any failure answers 451 4.3.0 and the transaction is
 * gone either way (the client retries; nothing half-done is acknowledged).
 */
import { headerFieldCounts } from '../proto/headers.js';
import { reply } from '../proto/reply.js';
import { receivedHeader, rfc5322Date, withProtocol } from '../proto/trace.js';
import type { Reply } from '../proto/reply.js';
import type { Envelope } from '../services.js';
import { COMMIT_FAILED } from './replies.js';
import { tempfailAt } from './tempfail.js';
import type { Helo, SessionContext, Transaction } from './types.js';

function protocolOf(ctx: SessionContext, helo: Helo, tx: Transaction): string {
  return withProtocol({ esmtp: helo.esmtp, tls: ctx.tls, auth: ctx.authUser !== null, utf8: tx.params.smtputf8, lmtp: ctx.settings.lmtp });
}

/** Our Received: line (RFC 5321 §4.4) for this transaction. */
function receivedLine(ctx: SessionContext, helo: Helo, tx: Transaction, id: string, date: Date): string {
  const only = tx.recipients.length === 1 ? (tx.recipients[0]?.address ?? null) : null;
  return receivedHeader({
    helo: helo.name,
    clientAddress: ctx.peer.address,
    hostname: ctx.settings.hostname,
    protocol: protocolOf(ctx, helo, tx),
    id,
    recipient: only,
    date,
  });
}

/** On submission, the Date: and Message-ID: the client left out (RFC 6409 §8), given the fields present. */
function missingSubmissionHeaders(ctx: SessionContext, present: ReadonlyMap<string, number>, id: string, date: Date): string {
  let out = '';
  if (!present.has('date')) out += `Date: ${rfc5322Date(date)}\r\n`;
  if (!present.has('message-id')) out += `Message-ID: <${id}.${ctx.newId()}@${ctx.settings.hostname}>\r\n`;
  return out;
}

/** `traceBytes`: octets we put in front of the client's bytes (LMTP's duplicate check skips them). */
export function envelopeOf(ctx: SessionContext, helo: Helo, tx: Transaction, id: string, traceBytes = 0): Envelope {
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
      trace_bytes: traceBytes,
      ...(p.xqueueid !== undefined ? { xqueueid: p.xqueueid } : {}),
    },
  };
}

/** Commits the transaction and answers; leaves the session in the `ready` phase. */
export async function commitMessage(ctx: SessionContext, helo: Helo, tx: Transaction): Promise<void> {
  const id = ctx.newId();
  const date = new Date(ctx.clock.now());
  const received = Buffer.from(receivedLine(ctx, helo, tx, id, date), 'utf8');
  // one copy of the message (our Received: and the pieces read into a single buffer) and one scan of
  // its header section; a second copy only for a submission that lacks Date: or Message-ID:
  let content = tx.content.toBuffer(received);
  const fields = headerFieldCounts(content);
  let traceBytes = received.length;
  if (ctx.settings.submission) {
    const missing = Buffer.from(missingSubmissionHeaders(ctx, fields, id, date), 'utf8');
    if (missing.length > 0) {
      content = Buffer.concat([received, missing, content.subarray(received.length)]);
      traceBytes += missing.length;
    }
  }
  const envelope = envelopeOf(ctx, helo, tx, id, traceBytes);
  ctx.state = { phase: 'ready', helo };
  const hops = fields.get('received') ?? 0;
  if (hops > ctx.settings.hopCountLimit) {
    // a loop between MTAs: refused here, the previous hop bounces it once (RFC 5321 §6.3)
    return replyToMessage(ctx, tx, reply(554, '5.4.6', `Error: too many hops (${hops} Received: lines), mail forwarding loop`));
  }
  if (ctx.settings.lmtp) return deliverLmtp(ctx, tx, envelope, content);
  // maintenance (smtp.tempfail at data): the bytes were read, nothing is queued
  const maintenance = tempfailAt(ctx, 'data');
  if (maintenance) return replyToMessage(ctx, tx, maintenance);
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

/** The answer to the end of a message: once on SMTP, once per accepted recipient on LMTP (RFC 2033 §4.2). */
export function replyToMessage(ctx: SessionContext, tx: Transaction, r: Reply): void {
  const copies = ctx.settings.lmtp ? Math.max(1, tx.recipients.length) : 1;
  for (let i = 0; i < copies; i++) ctx.reply(r, { sender: tx.sender, ...(ctx.settings.lmtp ? { recipient: tx.recipients[i]?.address } : {}) });
}

async function deliverLmtp(ctx: SessionContext, tx: Transaction, envelope: Envelope, content: Buffer): Promise<void> {
  const deliver = ctx.services.deliver;
  try {
    if (!deliver) throw new Error('this listener has no LMTP delivery service');
    const replies = await deliver(envelope, content);
    if (replies.length !== tx.recipients.length) throw new Error(`LMTP delivery gave ${replies.length} replies for ${tx.recipients.length} recipients`);
    replies.forEach((r, i) => ctx.reply(reply(r.code, r.enhanced, r.text), { sender: tx.sender, recipient: tx.recipients[i]?.address }));
  } catch (err) {
    ctx.log.error({ err, sender: tx.sender, nrcpt: tx.recipients.length }, 'LMTP delivery failed');
    replyToMessage(ctx, tx, COMMIT_FAILED);
  }
}
