/*
 * The SMTP delivery agent: delivers one queue entry's recipients for one destination as a batch. It
 * plans the hosts (mx.ts), tries them in order and every address of each, and turns the peer's replies
 * into per-recipient outcomes with the remote reply in the reason, as Postfix does. A connect failure,
 * a refused greeting/EHLO/MAIL or a dropped connection moves on to the next host; 5xx to RCPT fails
 * that recipient only; the DATA reply applies to every accepted recipient. Never throws for a delivery
 * problem and never touches the queue: the scheduler records the outcomes.
 *
 * `lmtp:` destinations (RFC 2033) go through the same machinery — connection reuse, batching, timeouts,
 * STARTTLS policy, SIZE/8BITMIME/SMTPUTF8 — minus MX lookup and the loop check, with one outcome per
 * recipient from its own reply after the end of data. A recipient whose reply was never read stays
 * pending (deferred), never done: the backend is idempotent, a resend costs nothing, a lost mail would.
 * To a peer that advertises XQUEUEID (a Cartero SMTP or LMTP server) MAIL FROM carries the queue id,
 * which makes our resend after a lost 250 idempotent there (docs/xqueueid.md).
 */
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log/logger.js';
import { systemClock, type ServerClock } from '../../net/clock.js';
import type { AgentResult } from '../../queue/agent.js';
import { XQUEUEID_PATTERN } from '../../smtp/proto/params.js';
import { encodeXtext } from '../../smtp/proto/xtext.js';
import { dataPayload, downgradeTo7bit, has8bit, needsSmtpUtf8 } from './body.js';
import { DEFAULT_TIMEOUTS, SmtpConnection, SmtpFailure, type ClientProtocol, type ClientTimeouts, type MessageTransaction } from './client.js';
import { deliveryTargets, literalTarget, mxHosts, parseDestination, relayName, type Destination, type Failure, type ResolvedHost, type Target } from './mx.js';
import type { SharedSlotGate } from '../../cluster/destination-slots.js';
import { ConnectionCache, DestinationSlots, SiteHealth, type ConnectionCacheSettings, type SiteDownSettings } from './pool.js';
import { replyText, type ServerReply } from './reply-reader.js';

export interface BatchRecipient {
  address: string;
  /** RFC 3461 ORCPT as received, "addr-type;address" */
  orcpt: string | null;
  notify: string[] | null;
}

export interface BatchJob {
  queueId: string;
  sender: string;
  recipients: BatchRecipient[];
  content: Buffer;
  /** the SMTP session's envelope meta: ret, envid, body ('7BIT'|'8BITMIME'|'BINARYMIME'), smtputf8 */
  meta: Record<string, unknown>;
  now: number;
  /**
   * 'smtp:example.org' | 'smtp:[127.0.0.5]:2525' | a relayhost such as '[smart.example]:587' |
   * 'lmtp:[10.0.0.5]:24' | 'lmtp:mailstore.example:24' | 'lmtp:unix:/run/cartero/lmtp'
   */
  destination: string;
}

/**
 * How a delivered recipient left, for the DSN code (src/queue/dsn-notify.ts NoticeResult.handoff):
 * `mailbox` = final delivery (LMTP), `relayed` = SMTP next hop without DSN (we owe a NOTIFY=SUCCESS
 * notice), `dsn-peer` = SMTP next hop that took the DSN parameters over.
 */
export type Handoff = 'mailbox' | 'relayed' | 'dsn-peer';

export interface BatchResult {
  /** the host that gave the final answer, e.g. "mx1.example.org[127.0.0.5]:25"; "none" if none did */
  relay: string;
  results: Map<string, AgentResult>;
  /**
   * false when the accepting peer did not offer DSN: NOTIFY=SUCCESS recipients are owed a "relayed" DSN.
   * The last peer only, and SMTP's view: prefer `handoff`, which is per recipient and right for LMTP.
   */
  peerDsn: boolean;
  /** for every recipient whose outcome is `done`: how it left (per recipient: hosts may differ) */
  handoff: Map<string, Handoff>;
}

export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify';

export interface TlsPolicy {
  level: TlsLevel;
  /** trusted CA certificates (PEM) in addition to the system's */
  ca?: string | Buffer;
  /** the name the certificate must match; default the MX host name */
  name?: string;
}

export interface SmtpAgentOptions {
  resolver: Resolver;
  clock?: ServerClock;
  logger: Logger;
  /** our name in EHLO and for the "loops back to myself" test */
  myHostname: string;
  /** more names of ours (the loop test) */
  myNames?: string[];
  /** our addresses (the loop test: an MX resolving to one of them is us) */
  myAddresses: string[];
  /** port for MX destinations and `[host]` without a port; 25 in production, anything in labs */
  smtpPort: number;
  /** TLS policy per destination and host; default "may" */
  tls?: (destination: string, host: string) => TlsPolicy;
  /** SASL credentials for a destination (relayhost); null for none */
  relayAuth?: (destination: string) => { username: string; password: string } | null;
  /** concurrent deliveries per destination; default 20 */
  concurrency?: (destination: string) => number;
  /** on a cluster: makes `concurrency` a limit across every node (src/cluster/destination-slots.ts) */
  sharedSlots?: SharedSlotGate | null;
  /** recipients per transaction; default 50 */
  recipientLimit?: number;
  /** port for `lmtp:host` without a port; default 24 */
  lmtpPort?: number;
  /** recipients per LMTP transaction (Postfix's lmtp_destination_recipient_limit); default 50 */
  lmtpRecipientLimit?: number;
  connectionCache?: Partial<ConnectionCacheSettings>;
  siteDown?: Partial<SiteDownSettings>;
  timeouts?: Partial<ClientTimeouts>;
  /** source of the equal-preference shuffle of MX hosts and of addresses; default Math.random */
  random?: () => number;
  /** bind outgoing connections to this address */
  localAddress?: string;
}

export interface SmtpAgent {
  deliver(job: BatchJob): Promise<BatchResult>;
  close(): Promise<void>;
}

type HostOutcome = { kind: 'next'; reason: string; dead: boolean } | { kind: 'final' };

interface Prepared {
  payload: Buffer;
  mailParams: string[];
  smtpUtf8: boolean;
  downgraded: boolean;
}

function destinationKey(d: Destination): string {
  switch (d.kind) {
    case 'mx': return `${d.domain}:${d.port}`;
    case 'host': return `[${d.host}]:${d.port}`;
    case 'lmtp': return `lmtp:[${d.host}]:${d.port}`;
    case 'lmtp-unix': return `lmtp:unix:${d.path}`;
  }
}

const protocolOf = (d: Destination): ClientProtocol => (d.kind === 'lmtp' || d.kind === 'lmtp-unix' ? 'lmtp' : 'smtp');

/** RFC 3461 NOTIFY for an LMTP peer: we report final delivery ourselves, so SUCCESS is not passed on. */
export function lmtpNotify(notify: readonly string[]): string[] {
  const rest = notify.filter((w) => w.toUpperCase() !== 'SUCCESS');
  return rest.length > 0 ? rest : ['NEVER'];
}

const outcomeOf = (code: number): AgentResult['outcome'] => (code < 400 ? 'done' : code < 500 ? 'deferred' : 'failed');

export function createSmtpAgent(options: SmtpAgentOptions): SmtpAgent {
  const clock = options.clock ?? systemClock;
  const logs = { smtp: options.logger.child({ proto: 'smtp-client' }), lmtp: options.logger.child({ proto: 'lmtp-client' }) };
  const timeouts: ClientTimeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const random = options.random ?? Math.random;
  const recipientLimit = { smtp: Math.max(1, options.recipientLimit ?? 50), lmtp: Math.max(1, options.lmtpRecipientLimit ?? 50) };
  const slots = new DestinationSlots(options.concurrency ?? (() => 20), options.sharedSlots ?? null);
  const health = new SiteHealth(clock, { failures: 3, backoffMs: 60_000, ...options.siteDown });
  const cache = new ConnectionCache(clock, { maxConnections: 20, idleMs: 5000, ...options.connectionCache });
  const self = { names: [options.myHostname, ...(options.myNames ?? [])].map((n) => n.toLowerCase()), addresses: options.myAddresses };
  let closed = false;

  async function plan(dest: Destination): Promise<{ kind: 'targets'; targets: Target[] } | Failure> {
    const literal = literalTarget(dest);
    if (literal) return { kind: 'targets', targets: [literal] };
    if (dest.kind === 'lmtp-unix') return { kind: 'temporary', reason: `no target for lmtp:unix:${dest.path}` }; // literalTarget covers it
    const resolveHosts = (hosts: { name: string; preference: number }[]): Promise<ResolvedHost[]> =>
      Promise.all(hosts.map(async (h) => ({ ...h, a: await options.resolver.query(h.name, 'A'), aaaa: await options.resolver.query(h.name, 'AAAA') })));
    if (dest.kind === 'host' || dest.kind === 'lmtp') {
      // no MX and no loop check: the operator named this host
      return deliveryTargets(dest.host, await resolveHosts([{ name: dest.host, preference: 0 }]), dest.port, null, random);
    }
    const step = mxHosts(dest.domain, await options.resolver.query(dest.domain, 'MX'), random);
    if (step.kind !== 'hosts') return step;
    return deliveryTargets(dest.domain, await resolveHosts(step.hosts), dest.port, self, random);
  }

  /** Connects and gets the session ready for MAIL: greeting, EHLO, STARTTLS per policy, AUTH. */
  async function open(job: BatchJob, target: Target, plainOnly: boolean, proto: ClientProtocol): Promise<{ conn: SmtpConnection } | { reason: string; dead: boolean }> {
    const log = logs[proto];
    const helloVerb = proto === 'lmtp' ? 'LHLO' : 'EHLO';
    let conn: SmtpConnection;
    try {
      conn = await SmtpConnection.connect(target, clock, timeouts, target.path === undefined ? options.localAddress : undefined, proto);
    } catch (err) {
      return { reason: err instanceof Error ? err.message : String(err), dead: true };
    }
    const quit = async (reason: string, dead = false) => {
      await conn.quit();
      return { reason, dead };
    };
    try {
      const greeting = await conn.greeting();
      if (greeting.code !== 220) return await quit(`host ${conn.relay} refused to talk to me: ${replyText(greeting)}`, true);
      let hello = await conn.hello(options.myHostname);
      if (hello.code !== 250) return await quit(`host ${conn.relay} said: ${replyText(hello)} (in reply to ${helloVerb} command)`);
      const policy = options.tls?.(job.destination, target.host) ?? { level: 'may' };
      if (policy.level !== 'none' && !plainOnly) {
        const required = policy.level === 'encrypt' || policy.level === 'verify';
        if (!conn.caps.starttls) {
          if (required) return await quit(`TLS is required, but was not offered by host ${conn.relay}`);
        } else {
          let refused: ServerReply | null;
          try {
            refused = await conn.startTls({ verify: policy.level === 'verify', name: policy.name ?? target.host, ca: policy.ca });
          } catch (err) {
            conn.close();
            const reason = err instanceof Error ? err.message : String(err);
            if (required) return { reason, dead: false };
            log.info({ relay: conn.relay, queue_id: job.queueId, status: 'tls_fallback', reason }, 'TLS failed, retrying in plaintext');
            return open(job, target, true, proto);
          }
          if (refused && required) return await quit(`TLS is required, but host ${conn.relay} refused to start TLS: ${replyText(refused)}`);
          if (!refused) {
            hello = await conn.hello(options.myHostname);
            if (hello.code !== 250) return await quit(`host ${conn.relay} said: ${replyText(hello)} (in reply to ${helloVerb} command)`);
          }
        }
      }
      const creds = options.relayAuth?.(job.destination) ?? null;
      if (creds) {
        if (conn.caps.auth.length === 0) return await quit(`SASL authentication failed: server ${conn.relay} offered no authentication mechanisms`);
        if (!conn.caps.auth.includes('PLAIN') && !conn.caps.auth.includes('LOGIN')) {
          return await quit(`SASL authentication failed: server ${conn.relay} offered no compatible mechanism (${conn.caps.auth.join(' ')})`);
        }
        const r = await conn.auth(creds.username, creds.password);
        if (r.code !== 235) return await quit(`SASL authentication failed; server ${conn.relay} said: ${replyText(r)}`);
      }
      return { conn };
    } catch (err) {
      conn.close();
      const f = err instanceof SmtpFailure ? err : null;
      const dead = !!f && /initial server greeting/.test(f.message);
      return { reason: err instanceof Error ? err.message : String(err), dead };
    }
  }

  /** What the message needs from this peer; a failure when it cannot be sent to it at all. */
  function prepare(job: BatchJob, conn: SmtpConnection, recipients: string[]): Prepared | { outcome: 'failed' | 'deferred'; reason: string } {
    const caps = conn.caps;
    const smtpUtf8 = needsSmtpUtf8(job.sender, recipients, job.content, job.meta.smtputf8 === true);
    if (smtpUtf8 && !caps.smtpUtf8) {
      return { outcome: 'failed', reason: `SMTPUTF8 is required, but was not offered by host ${conn.relay}` };
    }
    let content = job.content;
    let downgraded = false;
    const declared = job.meta.body === '8BITMIME' || job.meta.body === 'BINARYMIME';
    const eightBit = declared || has8bit(content);
    if (eightBit && !caps.eightBitMime) {
      const d = downgradeTo7bit(content);
      if (!d.ok) return { outcome: 'deferred', reason: `host ${conn.relay} does not support 8BITMIME and ${d.reason}` };
      content = d.content;
      downgraded = true;
    }
    if (caps.size !== null && caps.size > 0 && content.length > caps.size) {
      return { outcome: 'failed', reason: `message size ${content.length} exceeds size limit ${caps.size} of server ${conn.relay}` };
    }
    const mailParams: string[] = [];
    if (caps.size !== null) mailParams.push(`SIZE=${content.length}`);
    if (eightBit && !downgraded) mailParams.push('BODY=8BITMIME');
    if (smtpUtf8) mailParams.push('SMTPUTF8');
    // an id the server would refuse (not one of ours) is left out: the content hash then keys the copy
    if (caps.xqueueid && XQUEUEID_PATTERN.test(job.queueId)) mailParams.push(`XQUEUEID=${encodeXtext(job.queueId)}`);
    if (caps.dsn) {
      if (job.meta.ret === 'FULL' || job.meta.ret === 'HDRS') mailParams.push(`RET=${job.meta.ret}`);
      if (typeof job.meta.envid === 'string' && job.meta.envid !== '') mailParams.push(`ENVID=${encodeXtext(job.meta.envid)}`);
    }
    return { payload: dataPayload(content), mailParams, smtpUtf8, downgraded };
  }

  function rcptParams(conn: SmtpConnection, r: BatchRecipient): string[] {
    if (!conn.caps.dsn) return [];
    const out: string[] = [];
    if (r.notify && r.notify.length > 0) out.push(`NOTIFY=${(conn.protocol === 'lmtp' ? lmtpNotify(r.notify) : r.notify).join(',')}`);
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      if (semi > 0) out.push(`ORCPT=${r.orcpt.slice(0, semi)};${encodeXtext(r.orcpt.slice(semi + 1))}`);
    }
    return out;
  }

  /** Runs transactions for the pending recipients on one connection; fills `results` and `handoff`. */
  async function sendOn(conn: SmtpConnection, job: BatchJob, pending: BatchRecipient[], results: Map<string, AgentResult>, handoff: Map<string, Handoff>): Promise<HostOutcome> {
    const log = logs[conn.protocol];
    const lmtp = conn.protocol === 'lmtp';
    const prepared = prepare(job, conn, pending.map((r) => r.address));
    if ('outcome' in prepared) {
      for (const r of pending) results.set(r.address, { outcome: prepared.outcome, reason: prepared.reason });
      return { kind: 'final' };
    }
    if (prepared.downgraded) log.info({ relay: conn.relay, queue_id: job.queueId, status: 'downgraded' }, '8-bit message converted to quoted-printable');
    const delivered: Handoff = lmtp ? 'mailbox' : conn.caps.dsn ? 'dsn-peer' : 'relayed';
    const record = (address: string, reply: ServerReply, command: string) => {
      const outcome = outcomeOf(reply.code);
      results.set(address, { outcome, reason: outcome === 'done' ? replyText(reply) : `host ${conn.relay} said: ${replyText(reply)} (in reply to ${command} command)` });
      if (outcome === 'done') handoff.set(address, delivered);
    };
    const limit = recipientLimit[conn.protocol];
    let needReset = false;
    for (let i = 0; i < pending.length; i += limit) {
      const chunk = pending.slice(i, i + limit);
      if (needReset && !(await conn.reset())) return { kind: 'next', reason: `lost connection with ${conn.relay} after RSET`, dead: false };
      const tx: MessageTransaction = {
        sender: job.sender,
        mailParams: prepared.mailParams,
        recipients: chunk.map((r) => ({ address: r.address, params: rcptParams(conn, r) })),
        payload: prepared.payload,
      };
      let replies;
      try {
        replies = await conn.transaction(tx);
      } catch (err) {
        return { kind: 'next', reason: err instanceof Error ? err.message : String(err), dead: false };
      }
      needReset = !(replies.final && replies.final.code < 400);
      if (replies.mail.code >= 400) {
        const reason = `host ${conn.relay} said: ${replyText(replies.mail)} (in reply to MAIL FROM command)`;
        if (replies.mail.code < 500) {
          await conn.quit();
          return { kind: 'next', reason, dead: false };
        }
        for (const r of pending.slice(i)) results.set(r.address, { outcome: 'failed', reason });
        return { kind: 'final' };
      }
      const accepted: BatchRecipient[] = [];
      chunk.forEach((r, k) => {
        const reply = replies.rcpts[k];
        if (!reply) return;
        if (reply.code < 400) accepted.push(r);
        else record(r.address, reply, 'RCPT TO');
      });
      if (accepted.length === 0) continue;
      if (replies.lmtp) {
        // RFC 2033 §4.2: each accepted recipient has its own reply; one we did not read stays pending
        const { finals, lost } = replies.lmtp;
        chunk.forEach((r, k) => {
          const reply = finals[k];
          if (reply) record(r.address, reply, 'end of DATA');
        });
        if (lost !== null) {
          log.info({ relay: conn.relay, queue_id: job.queueId, status: 'lost', answered: finals.filter((f) => f).length, accepted: accepted.length, reason: lost }, 'LMTP connection lost before every recipient was answered');
          return { kind: 'next', reason: lost, dead: false };
        }
        needReset = false;
        continue;
      }
      const last = replies.final ?? replies.data;
      if (!last) continue;
      for (const r of accepted) record(r.address, last, last === replies.final ? 'end of DATA' : 'DATA');
    }
    if (needReset && !(await conn.reset())) return { kind: 'final' };
    return { kind: 'final' };
  }

  async function deliverBatch(job: BatchJob, dest: Destination, key: string): Promise<BatchResult> {
    const proto = protocolOf(dest);
    const log = logs[proto];
    const results = new Map<string, AgentResult>();
    const handoff = new Map<string, Handoff>();
    const deferAll = (reason: string, outcome: AgentResult['outcome'] = 'deferred') => {
      for (const r of job.recipients) if (!results.has(r.address)) results.set(r.address, { outcome, reason });
    };
    let relay = 'none';
    let peerDsn = true;
    let lastReason = '';
    let sawSession = false;
    const pending = () => job.recipients.filter((r) => !results.has(r.address));

    const use = async (conn: SmtpConnection): Promise<boolean> => {
      const before = results.size;
      const out = await sendOn(conn, job, pending(), results, handoff);
      // the host that answered for some recipient (an LMTP peer may answer some before it is lost)
      if (out.kind === 'final' || results.size > before) relay = conn.relay;
      if (out.kind === 'final') {
        peerDsn = conn.caps.dsn;
        if (!conn.broken) cache.put(key, conn);
        return true;
      }
      lastReason = out.reason;
      log.info({ relay: conn.relay, queue_id: job.queueId, status: 'host_failed', reason: out.reason }, 'trying the next host');
      conn.close();
      return false;
    };

    // an idle connection to this destination first
    for (let conn = cache.take(key); conn; conn = cache.take(key)) {
      if (!(await conn.reset())) continue;
      sawSession = true;
      if (await use(conn)) break;
    }
    if (pending().length > 0) {
      const p = await plan(dest);
      if (p.kind !== 'targets') {
        deferAll(p.reason, p.kind === 'permanent' ? 'failed' : 'deferred');
        log.info({ queue_id: job.queueId, status: p.kind, reason: p.reason, destination: job.destination }, 'no delivery plan');
        return { relay, results, peerDsn, handoff };
      }
      for (const target of p.targets) {
        if (pending().length === 0) break;
        const opened = await open(job, target, false, proto);
        if ('reason' in opened) {
          lastReason = opened.reason;
          if (!opened.dead) sawSession = true;
          log.info({ relay: relayName(target), queue_id: job.queueId, status: 'host_failed', reason: opened.reason }, 'trying the next host');
          continue;
        }
        sawSession = true;
        await use(opened.conn);
      }
    }
    if (sawSession) health.alive(key);
    else if (health.dead(key, lastReason)) log.warn({ destination: job.destination, status: 'site_down', reason: lastReason }, 'destination suspended: no host answered');
    if (pending().length > 0) deferAll(lastReason || 'no host could be tried');
    return { relay, results, peerDsn, handoff };
  }

  return {
    async deliver(job: BatchJob): Promise<BatchResult> {
      const results = new Map<string, AgentResult>();
      const all = (outcome: AgentResult['outcome'], reason: string): BatchResult => {
        for (const r of job.recipients) results.set(r.address, { outcome, reason });
        return { relay: 'none', results, peerDsn: true, handoff: new Map() };
      };
      if (closed) return all('deferred', 'SMTP delivery agent is shutting down');
      const dest = parseDestination(job.destination, options.smtpPort, options.lmtpPort ?? 24);
      if (dest.kind === 'invalid') return all('deferred', dest.reason);
      const key = destinationKey(dest);
      const suspended = () => {
        const down = health.down(key);
        return down === null ? null : all('deferred', `delivery temporarily suspended: ${down}`);
      };
      const early = suspended();
      if (early) return early;
      try {
        // no cluster-wide slot in time: deferred, and tried again at the next retry
        return await slots.run(key, async () => suspended() ?? (await deliverBatch(job, dest, key)), (reason) => all('deferred', reason));
      } catch (err) {
        // a bug, not a delivery problem: keep the mail
        logs[protocolOf(dest)].error({ err, queue_id: job.queueId }, 'delivery failed unexpectedly');
        return all('deferred', `${protocolOf(dest).toUpperCase()} client error: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    async close(): Promise<void> {
      closed = true;
      await cache.closeAll();
    },
  };
}
