import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { createLogger } from '../log/logger.js';
import { closeWith, ListenError, startListeners, type ConnectionHandler } from './listeners.js';

const quiet = createLogger({ level: 'silent', format: 'json' });

/** Connects (from `localAddress`, another loopback address acting as another client) and resolves with everything the server sends until it closes. */
function readAll(port: number, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

function holdOpen(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Accepts and keeps the socket open (a session in progress); refuses with a marker line. */
function holdingHandler(): ConnectionHandler & { accepted: Socket[] } {
  const accepted: Socket[] = [];
  return {
    accepted,
    accept: (socket) => {
      accepted.push(socket);
      socket.write('hello\r\n');
    },
    refuse: (socket, _conn, reason) => closeWith(socket, `busy ${reason}\r\n`),
    shutdown: (socket) => closeWith(socket, 'bye\r\n'),
  };
}

test('per-client limit counts each client IP apart; listener limit counts all', async () => {
  const handler = holdingHandler();
  const listeners = await startListeners([
    { proto: 'smtp', address: '127.0.0.1', port: 0, handler, maxConnections: 3, maxConnectionsPerClient: 2 },
  ]);
  const port = listeners.bound[0]?.port ?? 0;
  const held = [await holdOpen(port), await holdOpen(port)];
  try {
    assert.equal(await readAll(port), 'busy client_limit\r\n');
    // Another loopback address is another client: accepted, and it fills the listener.
    held.push(await holdOpen(port, '127.0.0.2'));
    assert.equal(await readAll(port, '127.0.0.3'), 'busy listener_full\r\n');
    assert.equal(listeners.connections(), 3);
    held.pop()?.destroy();
    while (listeners.connections() > 2) await new Promise((r) => setTimeout(r, 5));
    held.push(await holdOpen(port, '127.0.0.3'));
    assert.equal(listeners.connections(), 3);
  } finally {
    for (const s of held) s.destroy();
    await listeners.close(1000);
  }
});

test('close() stops listening, lets handlers say goodbye, and waits for sessions', async () => {
  const handler = holdingHandler();
  const listeners = await startListeners([{ proto: 'imap', address: '127.0.0.1', port: 0, handler }]);
  const port = listeners.bound[0]?.port ?? 0;
  const session = readAll(port);
  while (listeners.connections() === 0) await new Promise((r) => setTimeout(r, 5));
  await listeners.close(2000);
  assert.equal(await session, 'hello\r\nbye\r\n');
  await assert.rejects(readAll(port), /ECONNREFUSED/);
});

test('close() destroys sessions that outlive the timeout', async () => {
  const handler: ConnectionHandler = { accept: () => undefined, refuse: () => undefined };
  const listeners = await startListeners([{ proto: 'pop3', address: '127.0.0.1', port: 0, handler }]);
  const client = await holdOpen(listeners.bound[0]?.port ?? 0);
  client.on('error', () => undefined);
  const closed = new Promise((r) => client.on('close', r));
  const t0 = Date.now();
  await listeners.close(200);
  await closed;
  assert.ok(Date.now() - t0 < 2000);
});

test('a port in use gives a ListenError naming the listener', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const addr = blocker.address();
  const busy = addr && typeof addr === 'object' ? addr.port : 0;
  const handler = holdingHandler();
  try {
    await assert.rejects(
      startListeners([
        { proto: 'imap', address: '127.0.0.1', port: 0, handler },
        { proto: 'smtp', address: '127.0.0.1', port: busy, handler, key: 'smtp.listen[0]' },
      ]),
      (err: unknown) => {
        assert.ok(err instanceof ListenError);
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.message, `cannot listen on smtp 127.0.0.1:${busy} (smtp.listen[0]): EADDRINUSE`);
        return true;
      },
    );
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});
