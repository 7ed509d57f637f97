/*
 * TCP listeners shared by every protocol server: binds exactly the configured addresses, enforces
 * per-listener and per-client-IP connection limits, and closes gracefully (stop accepting, let sessions
 * finish, destroy stragglers after a timeout). Knows nothing of any protocol: the handler speaks it.
 * Bind failures reject with a ListenError naming the listener; socket errors never crash the process.
 * A listener may instead be a Unix-domain socket (LMTP from a local MTA, as Cyrus and Dovecot offer): a
 * stale socket file left by a dead process is replaced, a live one or a non-socket file is an error; the
 * file gets its mode before the first accept and goes away at close. Only the listener limit applies
 * there: every client of a Unix socket has the same (no) address.
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { configuredListeners, type Config, type ListenerSettings, type Protocol } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 50;
/** how long a refused or closing client may take to read our last line */
const LINGER_MS = 5000;

export type RefuseReason = 'listener_full' | 'client_limit';

export interface ConnectionInfo {
  id: number;
  proto: string;
  /** client IP, IPv4-mapped IPv6 unwrapped; UNIX_CLIENT on a Unix-socket listener */
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

interface ListenerBase {
  proto: string;
  handler: ConnectionHandler;
  /** the configuration key, for messages (e.g. smtp.listen[0]) */
  key?: string;
  maxConnections?: number;
  /** TCP only: a Unix socket has no client addresses to tell apart */
  maxConnectionsPerClient?: number;
}

export interface TcpListenerSpec extends ListenerBase {
  address: string;
  /** 0 picks a free port (tests); see BoundListener.port */
  port: number;
  path?: undefined;
}

export interface UnixListenerSpec extends ListenerBase {
  /** the socket file, e.g. /run/cartero/lmtp.sock */
  path: string;
  /** file mode of the socket; default 0o660 (the MTA's group may connect) */
  mode?: number;
  address?: undefined;
  port?: undefined;
}

export type ListenerSpec = TcpListenerSpec | UnixListenerSpec;

/** `client` of every connection on a Unix-socket listener (it has no peer address). */
export const UNIX_CLIENT = 'unix';
export const DEFAULT_UNIX_MODE = 0o660;

/**
 * The spec of one configured listener (`configuredListeners`), served by `handler`. An entry with a
 * `path` (lmtp.listen: `{ path: /run/cartero/lmtp.sock, mode: 0o660 }`) is a Unix-socket listener.
 */
export function specFor(l: ListenerSettings & { path?: string | undefined; mode?: number | undefined }, handler: ConnectionHandler): ListenerSpec {
  if (l.path !== undefined) {
    return {
      proto: l.proto,
      path: l.path,
      key: l.key,
      handler,
      ...(l.mode !== undefined ? { mode: l.mode } : {}),
      ...(l.maxConnections ? { maxConnections: l.maxConnections } : {}),
    };
  }
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

/** Specs for the configured listeners of one protocol, each served by `server`'s handler. */
export function protocolListenerSpecs(config: Config, proto: Protocol, server: { handler(l: ListenerSettings): ConnectionHandler }): ListenerSpec[] {
  return configuredListeners(config)
    .filter((l) => l.proto === proto)
    .map((l) => specFor(l, server.handler(l)));
}

export interface BoundListener {
  proto: string;
  /** the socket file's path for a Unix-socket listener */
  address: string;
  /** 0 for a Unix-socket listener */
  port: number;
  key?: string;
  /** set for a Unix-socket listener */
  path?: string;
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

function describe(l: { proto: string; address?: string | undefined; port?: number | undefined; path?: string | undefined; key?: string | undefined }): string {
  if (l.path !== undefined) return `${l.proto} unix:${l.path}${l.key ? ` (${l.key})` : ''}`;
  const address = l.address ?? '';
  const addr = address.includes(':') ? `[${address}]` : address;
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
      const key = spec.key ? { key: spec.key } : {};
      if (spec.path !== undefined) {
        await bindUnix(server, spec);
        bound.push({ proto: spec.proto, address: spec.path, port: 0, path: spec.path, ...key });
      } else {
        await bind(server, spec);
        const addr = server.address();
        const port = addr && typeof addr === 'object' ? addr.port : spec.port;
        bound.push({ proto: spec.proto, address: spec.address, port, ...key });
      }
      const where = describe({ ...spec, port: bound.at(-1)!.port });
      server.on('error', (err) => options.logger?.error({ err, proto: spec.proto }, `listener error on ${where}`));
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

function bind(server: Server, spec: TcpListenerSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(spec, err.code ?? err.message, { cause: err }));
    server.once('error', onError);
    server.listen({ host: spec.address, port: spec.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Resolves when something accepts connections on the Unix socket `path`. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Replaces a stale socket file (never another kind of file, never a live socket), listens, sets the mode. */
async function bindUnix(server: Server, spec: UnixListenerSpec): Promise<void> {
  const fail = (code: string, cause?: unknown): ListenError => new ListenError(spec, code, cause === undefined ? undefined : { cause });
  try {
    // node reports a missing directory as EACCES: say what it is
    if (!statSync(dirname(spec.path)).isDirectory()) throw fail('ENOTDIR');
  } catch (err) {
    if (err instanceof ListenError) throw err;
    throw fail((err as NodeJS.ErrnoException).code ?? 'ENOENT', err);
  }
  let existing: ReturnType<typeof lstatSync> | undefined;
  try {
    existing = lstatSync(spec.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail((err as NodeJS.ErrnoException).code ?? 'EACCES', err);
  }
  if (existing) {
    if (!existing.isSocket()) throw fail('EEXIST (not a socket; refusing to replace it)');
    if (await socketAlive(spec.path)) throw fail('EADDRINUSE');
    try {
      unlinkSync(spec.path);
    } catch (err) {
      throw fail((err as NodeJS.ErrnoException).code ?? 'EACCES', err);
    }
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(fail(err.code ?? err.message, err));
    server.once('error', onError);
    server.listen({ path: spec.path, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  try {
    chmodSync(spec.path, spec.mode ?? DEFAULT_UNIX_MODE);
  } catch (err) {
    await new Promise((r) => server.close(r));
    throw fail((err as NodeJS.ErrnoException).code ?? 'EPERM', err);
  }
  // node removes the file when the server closes; make sure of it even if it did not get to
  server.once('close', () => {
    try {
      if (lstatSync(spec.path).isSocket()) unlinkSync(spec.path);
    } catch {
      // already gone
    }
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
  const unix = spec.path !== undefined;
  const conn: ConnectionInfo = unix
    ? { id, proto: spec.proto, client: UNIX_CLIENT, clientPort: 0, localAddress: spec.path, localPort: 0 }
    : {
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
  if (!unix && fromClient >= (spec.maxConnectionsPerClient ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT)) {
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
