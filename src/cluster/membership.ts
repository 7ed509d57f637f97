/*
 * Keeps this node in the cluster registry: registers at start (replacing the row of a previous run under
 * the same name), heartbeats every heartbeatMs on the injected clock, registers again if its row was
 * pruned, and removes its row at a graceful stop. Never stops the node: a store outage is logged once
 * when it starts and once when it ends, and the next heartbeat tries again. A newer registration of the
 * same name wins; this node then logs an error and stops heartbeating (two nodes must not share a name).
 */
import type { Logger } from '../log/logger.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import type { ClusterNode, NodeInfo, Store } from '../store/api.js';
import { checkNodeInfo } from '../store/cluster-common.js';
import { isStoreError } from '../store/errors.js';

export interface MembershipOptions {
  store: Store;
  logger: Logger;
  node: NodeInfo;
  clock?: ServerClock;
}

export type MembershipState = 'starting' | 'registered' | 'unreachable' | 'replaced' | 'stopped';

export class Membership {
  private readonly clock: ServerClock;
  private current: ClusterNode | null = null;
  private cancel: (() => void) | null = null;
  private beating: Promise<void> | null = null;
  private stateValue: MembershipState = 'starting';

  /** throws StoreError `invalid` for a node description the registry would refuse (a bad name) */
  constructor(private readonly o: MembershipOptions) {
    this.clock = o.clock ?? systemClock;
    this.o = { ...o, node: checkNodeInfo(o.node) };
  }

  get state(): MembershipState {
    return this.stateValue;
  }

  /** the registry row as last written, or null before the first successful registration */
  get registration(): ClusterNode | null {
    return this.current;
  }

  /** Registers (or logs why it could not) and starts the heartbeat timer. Never rejects. */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  /** One heartbeat now (the timer calls this; tests may too). Never rejects. */
  beat(): Promise<void> {
    this.beating ??= this.round().finally(() => {
      this.beating = null;
    });
    return this.beating;
  }

  async stop(): Promise<void> {
    this.cancel?.();
    this.cancel = null;
    await this.beating;
    const was = this.stateValue;
    this.stateValue = 'stopped';
    const row = this.current;
    if (!row || was === 'replaced') return;
    try {
      await this.o.store.cluster.deregister(row.name, row.incarnation);
      this.o.logger.info({ node: row.name }, `cluster: node ${row.name} left the registry`);
    } catch (err) {
      this.o.logger.warn({ node: row.name, err: errorText(err) }, `cluster: could not remove node ${row.name} from the registry; it will show as dead`);
    }
  }

  private schedule(): void {
    if (this.stateValue === 'stopped' || this.stateValue === 'replaced') return;
    this.cancel = this.clock.schedule(this.o.node.heartbeatMs, () => {
      void this.beat().then(() => this.schedule());
    });
  }

  private async round(): Promise<void> {
    if (this.stateValue === 'stopped' || this.stateValue === 'replaced') return;
    const { store, logger, node } = this.o;
    const now = this.clock.now();
    try {
      if (this.current) {
        try {
          await store.cluster.heartbeat(this.current.name, this.current.incarnation, now);
          this.current = { ...this.current, lastHeartbeat: now };
        } catch (err) {
          if (!isStoreError(err, 'not_found')) throw err;
          logger.warn({ node: node.name }, `cluster: node ${node.name} was missing from the registry (pruned as dead?); registering again`);
          this.current = await store.cluster.register(node, now);
        }
      } else {
        this.current = await store.cluster.register(node, now);
        logger.info({ node: node.name, roles: node.roles.join(','), heartbeat_ms: node.heartbeatMs }, `cluster: node ${node.name} registered`);
      }
      if (this.stateValue === 'unreachable') logger.info({ node: node.name }, 'cluster: registry reachable again; heartbeats resumed');
      this.stateValue = 'registered';
    } catch (err) {
      if (isStoreError(err, 'conflict')) {
        this.stateValue = 'replaced';
        logger.error({ node: node.name }, `cluster: another process registered the node name ${node.name}; this node stops heartbeating (give each node its own name)`);
        return;
      }
      if (this.stateValue !== 'unreachable') {
        logger.warn({ node: node.name, err: errorText(err) }, 'cluster: heartbeat failed; retrying every heartbeat interval');
      }
      this.stateValue = 'unreachable';
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
