/*
 * What an LMTP listener does with a message (RFC 2033; Cyrus's and Dovecot's role in the seeds): final
 * delivery, answered once per recipient. A recipient that is an account is filed into its INBOX by the
 * local delivery agent before its 250, so an over-quota mailbox is that recipient's 452 and nobody
 * else's. A recipient that is an alias or catch-all goes through the queue commit (its targets may be
 * remote); its 250 means "durably queued". Only our own recipients are accepted: LMTP never relays.
 *
 * Exactly once across the LMTP hop: a client that lost our 250 (timeout, crash) sends the message
 * again. A client that names its queue entry (MAIL FROM:<..> XQUEUEID=<id>, advertised in our LHLO
 * reply; a Cartero frontend does) gets the key `lmtp:<id>:<recipient>`: its resend finds the first copy,
 * and two queue entries that happen to hold the same bytes are two messages. For other clients the key
 * is the hash of their bytes (without the Received: line we add) and the recipient.
 */
import type { Logger } from '../log/logger.js';
import { splitAddress } from '../policy/address.js';
import type { LocalDomains } from '../policy/domains.js';
import { directLocalLookup, type LocalLookup } from '../policy/lookup.js';
import { unknownUser } from '../policy/recipients.js';
import type { CommitFn } from '../queue/commit.js';
import { logDelivery, statusOf } from '../queue/delivery-log.js';
import { clientContentDigest, clientQueueId } from '../queue/receipts.js';
import type { AgentResult, DeliveryAgent } from '../queue/agent.js';
import type { Envelope, EnvelopeRecipient, RecipientReply, SmtpServices } from '../smtp/services.js';
import type { BlobId, Clock, Store } from '../store/index.js';

export interface LmtpServicesOptions {
  store: Store;
  domains: LocalDomains;
  delimiters: string;
  /** the local delivery agent (src/delivery/local.ts) */
  local: DeliveryAgent;
  /** the queue commit, for recipients that expand through aliases */
  commit: CommitFn;
  clock: Clock;
  logger: Logger;
  /** the directory step, shared with SMTP's RCPT check and the commit (serve-mail.ts); absent: uncached */
  lookup?: LocalLookup;
}

const REPLY = /^([245]\d\d) ([245]\.\d{1,3}\.\d{1,3}) (.*)$/s;

/** An agent's reason as an LMTP reply: its own code when it carries one, else a generic one of its class. */
export function replyOf(recipient: string, result: AgentResult): RecipientReply {
  if (result.outcome === 'done') return { code: 250, enhanced: '2.0.0', text: `<${recipient}> Ok: ${result.reason}` };
  const m = REPLY.exec(result.reason);
  if (m) return { code: Number(m[1]), enhanced: m[2]!, text: m[3]! };
  return result.outcome === 'failed'
    ? { code: 550, enhanced: '5.0.0', text: `<${recipient}>: ${result.reason}` }
    : { code: 451, enhanced: '4.3.0', text: `<${recipient}>: ${result.reason}` };
}

/** The id under which this message's recipients are filed: the client's queue id, else a content hash. */
export function deliveryId(envelope: Envelope, content: Buffer): string {
  const queueId = clientQueueId(envelope.meta);
  return queueId !== null ? `lmtp:${queueId}` : `L${clientContentDigest(envelope.meta, content).slice(0, 32)}`;
}

export function createLmtpServices(o: LmtpServicesOptions): SmtpServices {
  const { store, domains, delimiters, logger } = o;
  // asked at RCPT and again for the message: with the shared lookup the second is answered from memory
  const lookup = o.lookup ?? directLocalLookup(store, delimiters);

  async function kindOf(address: string): Promise<'account' | 'alias' | 'unknown'> {
    const split = splitAddress(address);
    if (!split || !(await domains.isLocal(split.domain))) return 'unknown';
    return (await lookup(split.local, split.domain)).kind;
  }

  async function file(id: string, sender: string, rcpt: EnvelopeRecipient, content: Buffer, blobId: BlobId | undefined): Promise<RecipientReply> {
    const started = o.clock.now();
    let result: AgentResult;
    try {
      result = await o.local.deliver({ queueId: id, sender, recipient: rcpt.address, content, ...(blobId ? { blobId } : {}), now: started });
    } catch (err) {
      result = { outcome: 'deferred', reason: `451 4.3.0 ${err instanceof Error ? err.message : String(err)}` };
    }
    logDelivery(logger, {
      queueId: id,
      sender,
      recipient: rcpt.address,
      relay: o.local.relay,
      since: started,
      now: o.clock.now(),
      status: statusOf(result.outcome),
      reason: result.reason,
    });
    return replyOf(rcpt.address, result);
  }

  /**
   * For several mailboxes: the bytes stored once, each mailbox keeping only its trace headers over them
   * (as the queue's local deliveries do). Unreferenced until the first append; should that never come,
   * blob collection removes it after its grace period. Without it each mailbox stores its own copy.
   */
  async function sharedBlob(content: Buffer): Promise<BlobId | undefined> {
    try {
      return (await store.blobs.put(content)).id;
    } catch {
      return undefined;
    }
  }

  async function queueAliases(envelope: Envelope, recipients: EnvelopeRecipient[], content: Buffer): Promise<RecipientReply[]> {
    try {
      const { queueId } = await o.commit({ ...envelope, recipients }, content);
      return recipients.map((r) => ({ code: 250, enhanced: '2.0.0', text: `<${r.address}> Ok: queued as ${queueId}` }));
    } catch (err) {
      logger.error({ err, sender: envelope.sender, nrcpt: recipients.length }, 'LMTP queue commit failed');
      return recipients.map(() => ({ code: 451, enhanced: '4.3.0', text: 'Error: queue file write error' }));
    }
  }

  return {
    async checkRecipient({ recipient }) {
      return (await kindOf(recipient)) === 'unknown' ? unknownUser(recipient) : { action: 'accept', kind: 'local' };
    },
    // LMTP clients are the MTAs in front of us: the envelope sender was judged there
    checkSender: async () => ({ action: 'accept' }),
    authenticate: async () => null,
    commit: o.commit,
    async deliver(envelope, content) {
      const id = deliveryId(envelope, content);
      const kinds = await Promise.all(envelope.recipients.map((r) => kindOf(r.address)));
      const aliases = envelope.recipients.filter((_, i) => kinds[i] === 'alias');
      const queued = aliases.length > 0 ? await queueAliases(envelope, aliases, content) : [];
      const blobId = kinds.filter((k) => k === 'account').length > 1 ? await sharedBlob(content) : undefined;
      return Promise.all(
        envelope.recipients.map((r, i) => {
          if (kinds[i] === 'alias') return queued[aliases.indexOf(r)]!;
          // an account removed since RCPT: the agent answers 550 5.1.1 for it
          return file(id, envelope.sender, r, content, blobId);
        }),
      );
    },
  };
}
