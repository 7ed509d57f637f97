/*
 * In-memory SmtpServices for the SMTP server's tests: a tiny policy (local domains with known accounts,
 * relay only for trusted or authenticated clients, submission senders must be the login), password
 * checks, and a commit that records envelope and content. Commits can be made to fail or to wait on a
 * gate, to test that 250 never comes before the commit resolved. Nothing here touches disk.
 */
import type { Envelope, RecipientQuery, RecipientVerdict, SenderQuery, SenderVerdict, SmtpServices } from '../../src/smtp/services.js';

export interface Commit {
  queueId: string;
  envelope: Envelope;
  content: Buffer;
}

export interface FakeServicesOptions {
  localDomains?: string[];
  /** account address → password */
  accounts?: Record<string, string>;
}

export class FakeServices implements SmtpServices {
  readonly commits: Commit[] = [];
  readonly recipientQueries: RecipientQuery[] = [];
  readonly senderQueries: SenderQuery[] = [];
  readonly authAttempts: { user: string; password: string }[] = [];
  /** when set, commit() rejects with it */
  failCommit: Error | null = null;
  /** when set, commit() waits for it before recording */
  gate: Promise<void> | null = null;
  private readonly localDomains: Set<string>;
  private readonly accounts: Map<string, string>;
  private next = 1;
  private waiters: (() => void)[] = [];

  constructor(options: FakeServicesOptions = {}) {
    this.localDomains = new Set(options.localDomains ?? ['example.test']);
    this.accounts = new Map(Object.entries(options.accounts ?? { 'alice@example.test': 'secret', 'bob@example.test': 'hunter2' }));
  }

  async checkRecipient(query: RecipientQuery): Promise<RecipientVerdict> {
    this.recipientQueries.push(query);
    const at = query.recipient.lastIndexOf('@');
    const domain = at < 0 ? '' : query.recipient.slice(at + 1).toLowerCase();
    if (this.localDomains.has(domain)) {
      if (this.accounts.has(query.recipient.toLowerCase())) return { action: 'accept', kind: 'local' };
      return { action: 'reject', code: 550, enhanced: '5.1.1', text: `<${query.recipient}>: Recipient address rejected: User unknown` };
    }
    if (query.client.trusted || query.client.authUser !== null) return { action: 'accept', kind: 'relay' };
    return { action: 'reject', code: 554, enhanced: '5.7.1', text: `<${query.recipient}>: Relay access denied` };
  }

  async checkSender(query: SenderQuery): Promise<SenderVerdict> {
    this.senderQueries.push(query);
    const user = query.client.authUser;
    if (query.client.submission && user !== null && query.sender !== '' && query.sender.toLowerCase() !== user) {
      return { action: 'reject', code: 553, enhanced: '5.7.1', text: `<${query.sender}>: Sender address rejected: not owned by user ${user}` };
    }
    return { action: 'accept' };
  }

  async authenticate(user: string, password: string): Promise<string | null> {
    this.authAttempts.push({ user, password });
    const known = this.accounts.get(user.toLowerCase());
    return known !== undefined && known === password ? user.toLowerCase() : null;
  }

  async commit(envelope: Envelope, content: Buffer): Promise<{ queueId: string }> {
    if (this.gate) await this.gate;
    if (this.failCommit) throw this.failCommit;
    const queueId = `Q${String(this.next++).padStart(6, '0')}`;
    // copy: the session's buffers must not be relied upon after the commit resolved
    this.commits.push({ queueId, envelope: structuredClone(envelope), content: Buffer.from(content) });
    for (const w of this.waiters.splice(0)) w();
    return { queueId };
  }

  /** Resolves when at least `n` commits happened; rejects after `timeoutMs`. */
  async waitForCommits(n: number, timeoutMs = 5000): Promise<Commit[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.commits.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} commits, got ${this.commits.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.commits;
  }
}

/**
 * Checks that `content` is exactly `sent` after our own header lines and returns those lines, so a test
 * can check them too: byte-for-byte storage, nothing changed but what we prepend.
 */
export function addedPrefix(content: Buffer, sent: Buffer): string {
  const tail = content.subarray(content.length - sent.length);
  if (content.length < sent.length || !tail.equals(sent)) {
    throw new Error(`stored message does not end with the bytes sent:\n--- stored\n${content.toString('latin1')}\n--- sent\n${sent.toString('latin1')}`);
  }
  return content.toString('utf8', 0, content.length - sent.length);
}

/** Our Received: line (RFC 5321 §4.4) as the session writes it. */
export const RECEIVED_LINE =
  /^Received: from \S+ \(\[(IPv6:)?[0-9a-f.:]+\]\)\r\n\tby \S+ \(Cartero\) with (SMTP|E?SMTPS?A?|UTF8SMTPS?A?) id [0-9A-Z]+(\r\n\tfor <[^>]+>)?;( |\r\n\t)[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\r\n/;
