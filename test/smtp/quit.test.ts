/*
 * QUIT over real loopback sockets: the session answers 221 and releases the connection without
 * waiting for the client's end (clients such as smtp-source reset the connection after the 221, and
 * reading that reset would only cost an error), but keeps the lingering close when the client sent
 * more after QUIT, so the 221 is not lost to a reset.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, test } from 'node:test';
import { AuthLimiter } from '../../src/auth/limiter.js';
import { ManualClock } from '../../src/net/clock.js';
import { Session } from '../../src/smtp/session/session.js';
import { FakeServices } from './fake-services.js';
import { captureLogger, testSettings } from './harness.js';

let server: Server | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

interface Served {
  port: number;
  logs: Record<string, unknown>[];
  clock: ManualClock;
}

/** A listener on 127.0.0.1 port 0 running one Session per connection on a manual clock. */
async function serve(): Promise<Served> {
  const logs: Record<string, unknown>[] = [];
  const clock = new ManualClock();
  server = createServer((socket) => {
    sockets.push(socket);
    new Session({
      stream: socket,
      peer: { address: '127.0.0.1', port: socket.remotePort ?? 0, trusted: true, loopback: true },
      tls: false,
      settings: testSettings(),
      services: new FakeServices(),
      logger: captureLogger(logs),
      clock,
      authLimiter: new AuthLimiter({ maxFailures: 5, windowMs: 600_000 }),
      newId: () => 'ID1',
    }).start();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { port: address.port, logs, clock };
}

/** A client that keeps its own side open (it never sends FIN unless told to). */
function client(port: number): Promise<{ socket: Socket; text: () => string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    sockets.push(socket);
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, text: () => received, ended }));
  });
}

async function until(pred: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('QUIT: 221, then the server closes at once, without waiting for the client to close its side', async () => {
  const s = await serve();
  const c = await client(s.port);
  await until(() => c.text().includes('220 '), 'the greeting');
  c.socket.write('EHLO c.example\r\n');
  await until(() => c.text().includes('250 '), 'the EHLO reply');
  c.socket.write('QUIT\r\n');
  // the clock never moves: a lingering close would wait for the client's FIN or the 5 s timer
  await c.ended;
  assert.match(c.text(), /221 2\.0\.0 Bye\r\n$/);
  await until(() => s.logs.some((l) => l['msg'] === 'disconnect'), 'the disconnect line');
});

test('QUIT: a client that resets the connection after the 221 is not read (no connection error)', async () => {
  const s = await serve();
  const c = await client(s.port);
  await until(() => c.text().includes('220 '), 'the greeting');
  c.socket.write('QUIT\r\n');
  await until(() => c.text().includes('221 '), 'the 221');
  c.socket.resetAndDestroy();
  await until(() => s.logs.some((l) => l['msg'] === 'disconnect'), 'the disconnect line');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.logs.filter((l) => l['msg'] === 'connection error').length, 0);
});

test('QUIT with more bytes behind it: the 221 still arrives and the session ends when the client does', async () => {
  const s = await serve();
  const c = await client(s.port);
  await until(() => c.text().includes('220 '), 'the greeting');
  c.socket.write('QUIT\r\nNOOP\r\nMORE JUNK');
  await until(() => c.text().includes('221 '), 'the 221');
  assert.doesNotMatch(c.text(), /250/, 'nothing after QUIT is interpreted');
  c.socket.end();
  await c.ended;
  await until(() => s.logs.some((l) => l['msg'] === 'disconnect'), 'the disconnect line');
});
