/*
 * What the topology end-to-end tests share: bringing a lab up in a temporary directory (always torn
 * down, even when the test process dies), the fault tools (SIGKILL/SIGSTOP a node, SERVFAIL from the
 * lab DNS, a node's SMTP answering 4xx), the outside/inside senders, `cartero queue flush` (our ETRN),
 * and the bookkeeping that proves "nothing lost, nothing duplicated": every Message-ID that got 250
 * is looked up in the mailboxes through the store, and the counts are printed at the end of each test.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import type { Fault } from '../../src/dns/authority.js';
import { labDown, labKill, labStart, labUp, nodeConfig, packageRoot, queueCounts, resolveTopology, setDnsFaults, type LabSignal } from '../../src/lab/runner.js';
import { labSmtpTempfail, type TempfailPoint } from '../../src/lab/faults.js';
import { createLabSender, newMessageId, type LabMessage, type LabSender, type LabSenderOptions } from '../../src/lab/sender.js';
import { readState, type LabState } from '../../src/lab/state.js';
import { openStore } from '../../src/store/index.js';

const run = promisify(execFile);

/** CARTERO_E2E_FULL=1 runs the issue's counts; CI runs small ones. */
export const FULL = process.env['CARTERO_E2E_FULL'] === '1';

export interface Counts {
  sent: number;
  accepted: number;
  deferred: number;
  refused: number;
  delivered: number;
  duplicates: number;
  lost: number;
  bounced: number;
  /** Message-IDs found more than once, for the post-mortem */
  duplicateIds: string[];
}

export class Lab {
  readonly senders: LabSender[] = [];
  private constructor(
    readonly dir: string,
    public state: LabState,
  ) {}

  /** Brings the topology up in a fresh temporary directory; registers an exit hook that kills it. */
  static async up(name: string): Promise<Lab> {
    const dir = mkdtempSync(join(tmpdir(), `cartero-lab-${name}-`));
    const onExit = (): void => killAllSync(dir);
    process.once('exit', onExit);
    try {
      const state = await labUp({ topologyDir: resolveTopology(name), stateDir: join(dir, 'state') });
      return new Lab(join(dir, 'state'), state);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get dnsServer(): string {
    return `${this.state.dns.address}:${this.state.dns.port}`;
  }

  address(node: string): string {
    return this.state.nodes[node]!.address;
  }

  sender(options: Omit<LabSenderOptions, 'dnsServer' | 'smtpPort'> & { smtpPort?: number } = {}): LabSender {
    const s = createLabSender({ dnsServer: this.dnsServer, smtpPort: 2525, ...options });
    this.senders.push(s);
    return s;
  }

  // ---- fault tools
  kill(node: string, signal: LabSignal = 'SIGKILL'): Promise<void> {
    return labKill(this.dir, node, signal);
  }

  async start(node: string): Promise<void> {
    await labStart(this.dir, node);
    this.state = readState(this.dir);
  }

  dnsFaults(faults: Record<string, Fault>): Promise<void> {
    return setDnsFaults(this.dir, faults);
  }

  /** `cartero lab fault NODE smtp-tempfail AT` (AT null: `smtp-ok`): the node's SMTP answers 451 at AT, live. */
  async smtpTempfail(node: string, at: TempfailPoint | null): Promise<void> {
    await labSmtpTempfail(this.dir, node, at);
  }

  /** `cartero queue flush` on a node: every deferred message due now (what ETRN asks of a backup MX). */
  async flush(node: string): Promise<void> {
    await run(process.execPath, [join(packageRoot(), 'bin', 'cartero.js'), 'queue', 'flush', '-c', this.state.nodes[node]!.config], { timeout: 30_000 });
  }

  queue(node: string): Promise<{ active: number; leased: number }> {
    return queueCounts(nodeConfig(this.dir, node));
  }

  /** Message-ID → how many copies, over the INBOXes of `accounts` on `node` (read through the store). */
  async mailboxIds(node: string, accounts: readonly string[]): Promise<Map<string, number>> {
    const config = loadConfig(this.state.nodes[node]!.config);
    const store = await openStore(config.store, { migrate: false });
    const ids = new Map<string, number>();
    try {
      for (const address of accounts) {
        const account = await store.directory.getAccount(address);
        const inbox = account && (await store.mailboxes.get(account.id, 'INBOX'));
        if (!inbox) continue;
        for (const m of await store.messages.list(inbox.id)) {
          const head = (await store.messages.content(inbox.id, m.uid)).toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(end < 0 ? head : head.slice(0, end))?.[1];
          if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
        }
      }
    } finally {
      await store.close();
    }
    return ids;
  }

  /** The Message-IDs of the messages in a node's queue (read through its store; the node may be dead). */
  async queuedIds(node: string): Promise<Set<string>> {
    const config = loadConfig(this.state.nodes[node]!.config);
    const store = await openStore(config.store, { migrate: false });
    const ids = new Set<string>();
    try {
      for (const e of await store.queue.list()) {
        const text = (await store.queue.content(e.id)).toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(end < 0 ? text : text.slice(0, end))?.[1];
        if (id) ids.add(id);
      }
    } finally {
      await store.close();
    }
    return ids;
  }

  /** The first message whose Message-ID is `id`, as stored (for header checks). */
  async messageText(node: string, account: string, id: string): Promise<string | null> {
    const config = loadConfig(this.state.nodes[node]!.config);
    const store = await openStore(config.store, { migrate: false });
    try {
      const a = await store.directory.getAccount(account);
      const inbox = a && (await store.mailboxes.get(a.id, 'INBOX'));
      if (!inbox) return null;
      for (const m of await store.messages.list(inbox.id)) {
        const text = (await store.messages.content(inbox.id, m.uid)).toString('latin1');
        if (text.includes(id)) return text;
      }
      return null;
    } finally {
      await store.close();
    }
  }

  /** Delivery log lines with status=bounced across every node (a node's log survives its restarts). */
  bounced(): number {
    let n = 0;
    for (const node of Object.values(this.state.nodes)) {
      let text = '';
      try {
        text = readFileSync(node.log, 'utf8');
      } catch {
        continue;
      }
      n += text.split('\n').filter((l) => / status=bounced |"status":"bounced"/.test(l)).length;
    }
    return n;
  }

  /** Resends recognised by a next hop (XQUEUEID receipts, docs/xqueueid.md), over every node's log. */
  resent(): number {
    let n = 0;
    for (const node of Object.keys(this.state.nodes)) n += this.log(node).split('\n').filter((l) => / status=resent |"status":"resent"/.test(l)).length;
    return n;
  }

  log(node: string): string {
    try {
      return readFileSync(this.state.nodes[node]!.log, 'utf8');
    } catch {
      return '';
    }
  }

  async down(): Promise<void> {
    await Promise.all(this.senders.map((s) => s.close()));
    // CARTERO_E2E_KEEP_LOGS=DIR keeps every node's log for a post-mortem
    const keep = process.env['CARTERO_E2E_KEEP_LOGS'];
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const [name, n] of Object.entries(this.state.nodes)) if (existsSync(n.log)) copyFileSync(n.log, join(keep, `${this.state.topology}-${name}.log`));
    }
    const root = join(this.dir, '..');
    try {
      await labDown(this.dir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
}

/** Last resort at process exit: SIGKILL every pid the lab recorded (synchronous, no waiting). */
function killAllSync(root: string): void {
  try {
    const state = readState(join(root, 'state'));
    for (const pid of [state.dns.pid, ...Object.values(state.nodes).map((n) => n.pid)]) {
      if (pid === null) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // no state: nothing was started, or down() already ran
  }
  rmSync(root, { recursive: true, force: true });
}

/** Sends one message per item with `concurrency` in flight; records every Message-ID that got 250. */
export class Load {
  readonly accepted = new Set<string>();
  sent = 0;
  deferred = 0;
  refused = 0;
  readonly reasons = new Map<string, number>();
  /** which host gave the 250s: relay string → count */
  readonly relays = new Map<string, number>();
  /** Message-ID → the relay that answered 250 */
  readonly acceptedBy = new Map<string, string>();

  async run(count: number, concurrency: number, make: (i: number) => { sender: LabSender; message: LabMessage }, onProgress?: (done: number) => Promise<void> | void): Promise<void> {
    let next = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const { sender, message } = make(i);
          const messageId = message.messageId ?? newMessageId('e2e');
          this.sent++;
          const r = await sender.send({ ...message, messageId });
          const outcomes = [...r.outcomes.values()];
          if (outcomes.every((o) => o.outcome === 'accepted')) {
            this.accepted.add(messageId);
            for (const o of outcomes) {
              this.relays.set(o.relay, (this.relays.get(o.relay) ?? 0) + 1);
              this.acceptedBy.set(messageId, o.relay);
            }
          }
          else if (outcomes.some((o) => o.outcome === 'failed')) this.refused++;
          else this.deferred++;
          for (const o of outcomes) if (o.outcome !== 'accepted') this.reasons.set(o.reason, (this.reasons.get(o.reason) ?? 0) + 1);
          done++;
          await onProgress?.(done);
        }
      }),
    );
  }
}

/** Compares what got 250 with what is in the mailboxes. */
/**
 * RFC 1047's case, which no receipt can join: messages in the killed node's queue whose 250 never
 * reached the client (the relay it records for them is not that node), so the client rightly sent them
 * again elsewhere. `lostReply` are those; `unexplained` the duplicates that are not among them.
 */
export function lostReplies(onDead: ReadonlySet<string>, load: Load, deadRelay: string, duplicateIds: readonly string[]): { lostReply: Set<string>; unexplained: string[] } {
  const lostReply = new Set([...onDead].filter((id) => !(load.acceptedBy.get(id) ?? '').includes(deadRelay)));
  return { lostReply, unexplained: duplicateIds.filter((id) => !lostReply.has(id)) };
}

export function tally(load: Load, delivered: Map<string, number>, bounced: number): Counts {
  let found = 0;
  let duplicates = 0;
  const duplicateIds: string[] = [];
  for (const id of load.accepted) {
    const n = delivered.get(id) ?? 0;
    if (n > 0) found++;
    if (n > 1) {
      duplicates += n - 1;
      duplicateIds.push(id);
    }
  }
  return {
    sent: load.sent,
    accepted: load.accepted.size,
    deferred: load.deferred,
    refused: load.refused,
    delivered: found,
    duplicates,
    lost: load.accepted.size - found,
    bounced,
    duplicateIds,
  };
}

export function printCounts(name: string, c: Counts, extra = ''): void {
  console.log(
    `${name}: sent ${c.sent}, 250 ${c.accepted}, deferred ${c.deferred}, refused ${c.refused}, delivered ${c.delivered}, ` +
      `duplicates ${c.duplicates}, lost ${c.lost}, bounced ${c.bounced}${extra ? `; ${extra}` : ''}` +
      (c.duplicateIds.length > 0 ? `\n  duplicated: ${c.duplicateIds.slice(0, 10).join(' ')}` : ''),
  );
}

/** Polls `check` every 250 ms until it holds or `ms` pass (then throws with `what`). */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Merges per-node Message-ID counts. */
export function merge(...maps: Map<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of maps) for (const [k, v] of m) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}
