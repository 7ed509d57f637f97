/*
 * What the cluster fault tests and the cluster benchmark share: the `cluster` lab (three `cartero serve`
 * nodes over one fresh PostgreSQL database, on the machine's server or a private one) brought up in a
 * temporary directory and always torn down; `cartero cluster status --json` as an operator runs it;
 * a load of SMTP sessions spread over the nodes that, like a real MTA, tries the next node when one
 * does not answer 250; and the mailbox count that proves every 250 is there exactly once.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { labDown, labKill, labStart, labUp, packageRoot, resolveTopology, type LabSignal } from '../../src/lab/runner.js';
import { createLabSender, newMessageId, type LabSender } from '../../src/lab/sender.js';
import { readState, type LabState } from '../../src/lab/state.js';
import { openStore, type Store } from '../../src/store/index.js';

const run = promisify(execFile);

export const NODES = ['node1', 'node2', 'node3'] as const;
export type NodeName = (typeof NODES)[number];
export const ACCOUNTS = ['alice@example.org', 'bob@example.org', 'carol@example.org'];
export const PASSWORD = 'lab-secret';

/** `cartero cluster status --json`, the parts the tests read. */
export interface StatusJson {
  nodes: { name: string; alive: boolean; leases: number; pid: number }[];
  queue: { active: number; leased: number; held: number };
  jobs: { job: string; node: string | null }[];
}

export class ClusterLab {
  private readonly senders: LabSender[] = [];
  private constructor(
    private readonly root: string,
    readonly dir: string,
    public state: LabState,
    /** the shared store's URL */
    readonly url: string,
  ) {}

  /** The `cluster` topology (or `topology`) in a temp dir; `postgresServer`: where its database goes. */
  static async up(options: { postgresServer?: string; topology?: string } = {}): Promise<ClusterLab> {
    const root = mkdtempSync(join(tmpdir(), 'cartero-cluster-'));
    const dir = join(root, 'state');
    process.once('exit', () => killAllSync(root));
    try {
      const state = await labUp({ topologyDir: resolveTopology(options.topology ?? 'cluster'), stateDir: dir, ...(options.postgresServer ? { postgresServer: options.postgresServer } : {}) });
      const config = loadConfig(state.nodes['node1']!.config);
      if (config.store.backend !== 'postgres') throw new Error('the cluster lab runs on the postgres backend');
      return new ClusterLab(root, dir, state, config.store.url);
    } catch (err) {
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  address(node: NodeName): string {
    return this.state.nodes[node]!.address;
  }

  /** The registry name of a lab node (its hostname) and back. */
  static hostOf(node: NodeName): string {
    return `${node}.example.org`;
  }
  static nodeOf(host: string): NodeName | undefined {
    return NODES.find((n) => `${n}.example.org` === host);
  }

  sender(): LabSender {
    const s = createLabSender({ dnsServer: `${this.state.dns.address}:${this.state.dns.port}`, smtpPort: 2525, timeoutMs: 10_000 });
    this.senders.push(s);
    return s;
  }

  kill(node: NodeName, signal: LabSignal = 'SIGKILL'): Promise<void> {
    return labKill(this.dir, node, signal);
  }

  async start(node: NodeName): Promise<void> {
    await labStart(this.dir, node);
    this.state = readState(this.dir);
  }

  /** The last lines a node wrote (its log), to show with a failure. */
  logTail(node: NodeName, lines = 40): string {
    try {
      return readFileSync(readState(this.dir).nodes[node]!.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (err) {
      return `(no log: ${String(err)})`;
    }
  }

  pid(node: NodeName): number | null {
    return readState(this.dir).nodes[node]!.pid;
  }

  /** `cartero cluster status --json -c <node's config>`, as an operator would run it. */
  async status(via: NodeName = 'node1'): Promise<StatusJson> {
    const { stdout } = await run(process.execPath, [join(packageRoot(), 'bin', 'cartero.js'), 'cluster', 'status', '--json', '-c', this.state.nodes[via]!.config], { timeout: 30_000 });
    return JSON.parse(stdout) as StatusJson;
  }

  async withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const store = await openStore({ backend: 'postgres', url: this.url, pool_size: 2 }, { migrate: false });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  /** Message-ID → copies, over the INBOXes of every lab account (one shared store). */
  mailboxIds(): Promise<Map<string, number>> {
    return this.withStore(async (store) => {
      const ids = new Map<string, number>();
      for (const address of ACCOUNTS) {
        const account = await store.directory.getAccount(address);
        const inbox = account && (await store.mailboxes.get(account.id, 'INBOX'));
        if (!inbox) continue;
        for (const m of await store.messages.list(inbox.id)) {
          const head = (await store.messages.content(inbox.id, m.uid)).subarray(0, 4096).toString('latin1');
          const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(head)?.[1];
          if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
        }
      }
      return ids;
    });
  }

  /** Live queue leases by owner ("node2.example.org:1234" → n). */
  leases(): Promise<Map<string, number>> {
    return this.withStore(async (store) => new Map((await store.cluster.leases(Date.now())).map((l) => [l.owner, l.count])));
  }

  queue(): Promise<{ active: number; leased: number }> {
    return this.withStore((store) => store.queue.counts(Date.now()));
  }

  log(node: NodeName): string {
    try {
      return readFileSync(this.state.nodes[node]!.log, 'utf8');
    } catch {
      return '';
    }
  }

  async down(): Promise<void> {
    await Promise.all(this.senders.map((s) => s.close()));
    try {
      await labDown(this.dir);
    } finally {
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}

/** Last resort at process exit: SIGKILL what the lab recorded and drop its database (best effort). */
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
    if (state.postgres && /^cartero_lab_[0-9a-f]+$/.test(state.postgres.database)) {
      spawnSync('psql', [state.postgres.server, '-c', `DROP DATABASE IF EXISTS "${state.postgres.database}" WITH (FORCE)`], { timeout: 10_000, stdio: 'ignore' });
    }
  } catch {
    // nothing was started, or down() already ran
  }
  rmSync(root, { recursive: true, force: true });
}

/**
 * Messages from `sessions` SMTP clients, session i starting on node i mod 3; a message that gets no 250
 * (refused connection, cut session, 4xx) is offered to the next node, then the next round after
 * `retryDelayMs`, at most `attempts` tries in all, as a sending MTA would.
 */
export class FailoverLoad {
  readonly accepted = new Set<string>();
  /** Message-ID → the node whose 250 it got */
  readonly acceptedBy = new Map<string, NodeName>();
  /** Message-IDs that had an attempt without a 250 (the only ones a crash may legitimately duplicate) */
  readonly interrupted = new Set<string>();
  /** node → the Message-IDs whose attempt there ended without a 250 */
  readonly failedOn = new Map<NodeName, Set<string>>();
  sent = 0;
  /** attempts answered 4xx or not answered at all */
  deferredAttempts = 0;
  /** messages answered 5xx (never expected here) */
  refused = 0;
  /** messages given up after every attempt */
  gaveUp = 0;
  readonly reasons = new Map<string, number>();
  readonly perNode = new Map<NodeName, number>();

  constructor(
    private readonly lab: ClusterLab,
    private readonly options: { sessions: number; attempts?: number; retryDelayMs?: number; nodes?: readonly NodeName[] },
  ) {}

  async run(count: number, onProgress?: (done: number) => Promise<void> | void): Promise<void> {
    const nodes = this.options.nodes ?? NODES;
    const attempts = this.options.attempts ?? 6;
    const senders = Array.from({ length: this.options.sessions }, () => this.lab.sender());
    let next = 0;
    let done = 0;
    await Promise.all(
      senders.map(async (sender, s) => {
        while (next < count) {
          const i = next++;
          const messageId = newMessageId('cluster');
          const to = ACCOUNTS[i % ACCOUNTS.length]!;
          this.sent++;
          let accepted = false;
          let refused = false;
          for (let a = 0; a < attempts && !accepted; a++) {
            if (a > 0 && a % nodes.length === 0) await new Promise((r) => setTimeout(r, this.options.retryDelayMs ?? 500));
            const node = nodes[(s + a) % nodes.length]!;
            const r = await sender.send({ from: `app${s}@remote.test`, to: [to], subject: `cluster ${i}`, messageId, destination: `smtp:[${this.lab.address(node)}]:2525` });
            const o = r.outcomes.get(to)!;
            if (o.outcome === 'accepted') {
              accepted = true;
              this.accepted.add(messageId);
              this.acceptedBy.set(messageId, node);
              this.perNode.set(node, (this.perNode.get(node) ?? 0) + 1);
            } else if (o.outcome === 'failed') {
              this.refused++;
              refused = true;
              this.reasons.set(o.reason.slice(0, 120), (this.reasons.get(o.reason.slice(0, 120)) ?? 0) + 1);
              break;
            } else {
              this.deferredAttempts++;
              this.interrupted.add(messageId);
              const set = this.failedOn.get(node) ?? new Set<string>();
              set.add(messageId);
              this.failedOn.set(node, set);
              this.reasons.set(o.reason.slice(0, 120), (this.reasons.get(o.reason.slice(0, 120)) ?? 0) + 1);
            }
          }
          if (!accepted && !refused) this.gaveUp++;
          done++;
          await onProgress?.(done);
        }
      }),
    );
  }
}

export interface ClusterCounts {
  sent: number;
  accepted: number;
  delivered: number;
  lost: number;
  duplicates: number;
  duplicateIds: string[];
}

export function countDelivered(load: FailoverLoad, ids: Map<string, number>): ClusterCounts {
  let delivered = 0;
  let duplicates = 0;
  const duplicateIds: string[] = [];
  for (const id of load.accepted) {
    const n = ids.get(id) ?? 0;
    if (n > 0) delivered++;
    if (n > 1) {
      duplicates += n - 1;
      duplicateIds.push(id);
    }
  }
  return { sent: load.sent, accepted: load.accepted.size, delivered, lost: load.accepted.size - delivered, duplicates, duplicateIds };
}

/** Polls `check` every 250 ms until it holds or `ms` pass (then throws with `what`). */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
