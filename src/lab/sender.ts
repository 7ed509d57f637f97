/*
 * The lab's outside sender: injects test mail the way a real remote MTA would, by Cartero's own SMTP
 * delivery agent (src/delivery/smtp/agent.ts) resolving MX and A records through the lab DNS — MX
 * preferences, every address of a round-robin name, next host on a refused connection or a 4xx — or
 * straight to one node (`--via`). Each message has a unique Message-ID so tests can count deliveries
 * and duplicates in the mailboxes. It never queues: a message nobody accepted is reported, not retried.
 */
import { randomBytes } from 'node:crypto';
import { createSmtpAgent, type SmtpAgent } from '../delivery/smtp/agent.js';
import { createResolver } from '../dns/resolver.js';
import { createLogger, type Logger } from '../log/logger.js';

export interface LabSenderOptions {
  /** the lab DNS server, "127.0.0.1:port" */
  dnsServer: string;
  /** SMTP port of MX hosts and of `[host]` destinations without one; the labs use 2525 */
  smtpPort: number;
  /** bind outgoing connections to this address (the sender's "site", outside or inside mynetworks) */
  bindAddress?: string;
  /** our name in EHLO */
  helo?: string;
  /** AUTH PLAIN/LOGIN credentials (a roaming user on the submission port) */
  auth?: { username: string; password: string };
  logger?: Logger;
  /** per connect/command, ms; default 10 s (a stopped node must not hold a test for minutes) */
  timeoutMs?: number;
}

export interface LabMessage {
  from: string;
  to: string[];
  subject?: string;
  /** default a fresh unique id `<lab.RANDOM@cartero.lab>` */
  messageId?: string;
  body?: string;
  /** extra header lines, CRLF-free, e.g. "X-Lab-Seq: 7" */
  headers?: string[];
  /** `smtp:[127.0.1.10]:2525` to skip MX; default the MX of each recipient's domain */
  destination?: string;
}

export type SendOutcome = 'accepted' | 'deferred' | 'failed';

export interface SendResult {
  messageId: string;
  /** per recipient */
  outcomes: Map<string, { outcome: SendOutcome; reason: string; relay: string }>;
}

export interface LabSender {
  send(message: LabMessage): Promise<SendResult>;
  close(): Promise<void>;
}

export function newMessageId(tag = 'lab'): string {
  return `<${tag}.${randomBytes(9).toString('hex')}@cartero.lab>`;
}

/** A minimal RFC 5322 message; header values are made single-line so a test cannot inject headers. */
export function buildMessage(m: LabMessage, messageId: string): Buffer {
  const clean = (s: string): string => s.replace(/[\r\n]+/g, ' ');
  const lines = [
    `From: ${clean(m.from)}`,
    `To: ${m.to.map(clean).join(', ')}`,
    `Subject: ${clean(m.subject ?? 'cartero lab message')}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${clean(messageId)}`,
    ...(m.headers ?? []).map(clean),
    '',
    ...(m.body ?? 'This is a test message sent by cartero lab.').split(/\r?\n/),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export function createLabSender(o: LabSenderOptions): LabSender {
  const logger = o.logger ?? createLogger({ level: 'silent', format: 'json' });
  const timeout = o.timeoutMs ?? 10_000;
  const agent: SmtpAgent = createSmtpAgent({
    resolver: createResolver({ servers: [o.dnsServer], timeoutMs: 2000, retries: 1 }),
    logger,
    myHostname: o.helo ?? 'sender.cartero.lab',
    // an outside sender is never one of the MXs: no host is dropped as "ourselves"
    myAddresses: [],
    smtpPort: o.smtpPort,
    tls: () => ({ level: 'none' }),
    relayAuth: () => o.auth ?? null,
    timeouts: { connectMs: timeout, commandMs: timeout, dataBlockMs: timeout },
    // a dead host is retried on every message: the sender's job is to find the live one each time
    siteDown: { failures: 1_000_000, backoffMs: 1 },
    ...(o.bindAddress ? { localAddress: o.bindAddress } : {}),
  });
  let seq = 0;
  return {
    async send(m) {
      const messageId = m.messageId ?? newMessageId();
      const content = buildMessage(m, messageId);
      const outcomes: SendResult['outcomes'] = new Map();
      // one transaction per destination, as an MTA groups recipients by next hop
      const groups = new Map<string, string[]>();
      for (const rcpt of m.to) {
        const dest = m.destination ?? `smtp:${domainOf(rcpt)}`;
        groups.set(dest, [...(groups.get(dest) ?? []), rcpt]);
      }
      for (const [destination, rcpts] of groups) {
        const r = await agent.deliver({
          queueId: `lab${++seq}`,
          sender: m.from,
          recipients: rcpts.map((address) => ({ address, orcpt: null, notify: null })),
          content,
          meta: {},
          now: Date.now(),
          destination,
        });
        for (const rcpt of rcpts) {
          const res = r.results.get(rcpt);
          const outcome: SendOutcome = res?.outcome === 'done' ? 'accepted' : res?.outcome === 'failed' ? 'failed' : 'deferred';
          outcomes.set(rcpt, { outcome, reason: res?.reason ?? 'no result', relay: r.relay });
        }
      }
      return { messageId, outcomes };
    },
    close: () => agent.close(),
  };
}
