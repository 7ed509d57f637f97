/*
 * The sessions of one protocol server, keyed by the accepted socket (the key the listeners' shutdown
 * hook hands back), for a graceful drain: stop taking new sessions, ask each live one to finish, and
 * destroy whatever is left when the time is up. Shared by the SMTP/LMTP, IMAP and POP3 servers.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Protocol } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { busyLine } from './busy.js';
import type { ServerClock } from './clock.js';
import { closeWith, type ConnectionHandler, type ConnectionInfo } from './listeners.js';

export interface DrainableSession {
  /** finish what is in flight and close (the protocol's goodbye) */
  drain(): void;
  /** close now */
  destroy(): void;
}

export class LiveSessions<S extends DrainableSession> {
  private readonly live = new Map<Duplex, S>();
  private readonly emptied: (() => void)[] = [];
  private drainingValue = false;

  constructor(private readonly clock: ServerClock) {}

  /** true once drain() was called: new connections get the protocol's "shutting down" line */
  get draining(): boolean {
    return this.drainingValue;
  }

  get size(): number {
    return this.live.size;
  }

  add(socket: Duplex, session: S): void {
    this.live.set(socket, session);
  }

  get(socket: Duplex): S | undefined {
    return this.live.get(socket);
  }

  /**
   * The listeners' hooks for one protocol server: `accept` starts a session; a connection over a
   * listener's limits is logged and gets the protocol's busy line; at shutdown the socket's session is
   * asked to finish. `hostname` is read at each use (a reload may change it).
   */
  handler(proto: Protocol, logger: Logger, hostname: () => string, accept: (socket: Socket, conn: ConnectionInfo) => void): ConnectionHandler {
    return {
      accept,
      refuse: (socket, conn, reason) => {
        logger.warn({ proto, client: conn.client, status: 'refused', reason }, 'connection refused');
        closeWith(socket, busyLine(proto, hostname()));
      },
      shutdown: (socket) => this.live.get(socket)?.drain(),
    };
  }

  /** a session ended (its onClose) */
  remove(socket: Duplex): void {
    this.live.delete(socket);
    if (this.live.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }

  /** Asks every session to finish; resolves when none is left, destroying the rest after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    this.drainingValue = true;
    for (const s of this.live.values()) s.drain();
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.clock.schedule(timeoutMs, () => {
        for (const s of [...this.live.values()]) s.destroy();
        this.live.clear();
        resolve();
      });
      this.emptied.push(() => {
        cancel();
        resolve();
      });
    });
  }
}
