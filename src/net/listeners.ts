/*
 * TCP listeners shared by every protocol server: binds exactly the configured addresses, enforces
 * per-listener and per-client-IP connection limits, and closes gracefully (stop accepting, let sessions
 * finish, destroy stragglers after a timeout). Knows nothing of any protocol: the handler speaks it.
 * Bind failures reject with a ListenError naming the listener; socket errors never crash the process.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { ListenerSettings } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 50;
/** how long a refused or closing client may take to read our last line */
const LINGER_MS = 5000;

export type RefuseReason = 'listener_full' | 'client_limit';

export interface ConnectionInfo {
  id: number;
  proto: string;
  /** client IP, IPv4-mapped IPv6 unwrapped */
  client: string;
  clientPort: number;
  localAddress: string;
  localPort: number;
}

export interface ConnectionHandler {
  /** a new connection within the limits; the handler owns the socket from here */
  accept(socket: Socket, conn: ConnectionInfo): void;
  /** over a limit: answer with the protocol's "try later" line and close (see closeWith) */
  refuse(socket: Socket, conn: ConnectionInfo, reason: RefuseReason): void;
  /** the node is shutting down: say goodbye if the protocol allows; the socket is destroyed after the timeout */
  shutdown?(socket: Socket, conn: ConnectionInfo): void;
}

export interface ListenerSpec {
  proto: string;
  address: string;
  /** 0 picks a free port (tests); see BoundListener.port */
  port: number;
  handler: ConnectionHandler;
  /** the configuration key, for messages (e.g. smtp.listen[0]) */
  key?: string;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
}

/** The spec of one configured listener (`configuredListeners`), served by `handler`. */
export function specFor(l: ListenerSettings, handler: ConnectionHandler): ListenerSpec {
  return {
    proto: l.proto,
    address: l.address,
    port: l.port,
    key: l.key,
    handler,
    ...(l.maxConnections ? { maxConnections: l.maxConnections } : {}),
    ...(l.maxConnectionsPerClient ? { maxConnectionsPerClient: l.maxConnectionsPerClient } : {}),
  };
}

export interface BoundListener {
  proto: string;
  address: string;
  port: number;
  key?: string;
}

export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly listener: ListenerSpec,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot listen on ${describe(listener)}: ${code}`, options);
  }
}

export interface Listeners {
  readonly bound: readonly BoundListener[];
  /** open connections over all listeners */
  connections(): number;
  /** Stops accepting, waits for open connections up to `timeoutMs`, then destroys the rest. */
  close(timeoutMs?: number): Promise<void>;
}

function describe(l: { proto: string; address: string; port: number; key?: string }): string {
  const addr = l.address.includes(':') ? `[${l.address}]` : l.address;
  return `${l.proto} ${addr}:${l.port}${l.key ? ` (${l.key})` : ''}`;
}

export function clientAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** Writes a last line, half-closes, and makes sure the socket goes away even if the peer never reads. */
export function closeWith(socket: Socket, line: string): void {
  socket.setTimeout(LINGER_MS, () => socket.destroy());
  if (socket.writable) socket.end(line);
  else socket.destroy();
}

interface Open {
  socket: Socket;
  conn: ConnectionInfo;
  handler: ConnectionHandler;
}

export async function startListeners(specs: readonly ListenerSpec[], options: { logger?: Logger } = {}): Promise<Listeners> {
  const servers: Server[] = [];
  const bound: BoundListener[] = [];
  const open = new Set<Open>();
  let nextId = 1;
  const connectionId = (): number => nextId++;
  try {
    for (const spec of specs) {
      const state: ListenerState = { active: 0, perClient: new Map() };
      const server = createServer((socket) => onConnection(spec, state, socket, open, connectionId(), options.logger));
      servers.push(server);
      await bind(server, spec);
      const addr = server.address();
      const port = addr && typeof addr === 'object' ? addr.port : spec.port;
      bound.push({ proto: spec.proto, address: spec.address, port, ...(spec.key ? { key: spec.key } : {}) });
      server.on('error', (err) => options.logger?.error({ err, proto: spec.proto }, `listener error on ${describe({ ...spec, port })}`));
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw err;
  }
  return {
    bound,
    connections: () => open.size,
    close: (timeoutMs = 10_000) => closeAll(servers, open, timeoutMs),
  };
}

function bind(server: Server, spec: ListenerSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(spec, err.code ?? err.message, { cause: err }));
    server.once('error', onError);
    server.listen({ host: spec.address, port: spec.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Live counters of one listener, so limit checks are O(1) per connection. */
interface ListenerState {
  active: number;
  perClient: Map<string, number>;
}

function onConnection(spec: ListenerSpec, state: ListenerState, socket: Socket, open: Set<Open>, id: number, logger?: Logger): void {
  // A reset by the peer must never become an uncaught exception; handlers add their own listeners.
  socket.on('error', (err) => logger?.debug({ err, proto: spec.proto, client: clientAddress(socket) }, 'socket error'));
  const conn: ConnectionInfo = {
    id,
    proto: spec.proto,
    client: clientAddress(socket),
    clientPort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? spec.address,
    localPort: socket.localPort ?? spec.port,
  };
  const fromClient = state.perClient.get(conn.client) ?? 0;
  if (state.active >= (spec.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
    spec.handler.refuse(socket, conn, 'listener_full');
    return;
  }
  if (fromClient >= (spec.maxConnectionsPerClient ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT)) {
    spec.handler.refuse(socket, conn, 'client_limit');
    return;
  }
  state.active++;
  state.perClient.set(conn.client, fromClient + 1);
  const entry: Open = { socket, conn, handler: spec.handler };
  open.add(entry);
  socket.once('close', () => {
    open.delete(entry);
    state.active--;
    const n = (state.perClient.get(conn.client) ?? 1) - 1;
    if (n > 0) state.perClient.set(conn.client, n);
    else state.perClient.delete(conn.client);
  });
  spec.handler.accept(socket, conn);
}

async function closeAll(servers: Server[], open: Set<Open>, timeoutMs: number): Promise<void> {
  const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const o of open) o.handler.shutdown?.(o.socket, o.conn);
  const timer = setTimeout(() => {
    for (const o of open) o.socket.destroy();
  }, timeoutMs);
  try {
    await closed;
  } finally {
    clearTimeout(timer);
  }
}
