/*
 * Session behaviour that needs control over the connection: STARTTLS (pipelined plaintext discarded),
 * LOGINDISABLED for a non-loopback plaintext client, autologout, and shutdown BYE.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, test } from 'node:test';
import { RawClient, startImap, type ImapEnv } from './env.js';

let env: ImapEnv;
before(async () => {
  env = (await startImap('embedded', { limits: { autologoutMs: 400, preauthTimeoutMs: 400 } }))!;
  await env.account('alice@example.test', 'secret');
});
after(async () => env.close());

test('STARTTLS: pipelined plaintext after the command is discarded, then login over TLS works', async () => {
  const c = await RawClient.connect(env.port);
  c.write('t STARTTLS\r\nx LOGIN alice@example.test secret\r\n');
  await c.until(/^t OK .*\r\n/m);
  const secure = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ socket: c.socket as Socket, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s));
    s.once('error', reject);
  });
  const s = new RawClient(secure);
  const caps = await s.cmd('c', 'CAPABILITY');
  assert.doesNotMatch(caps, /STARTTLS/);
  assert.doesNotMatch(caps, /^x /m, 'the pipelined LOGIN must not have been run');
  assert.match(await s.cmd('n', 'NOOP'), /^n OK/m);
  assert.match(await s.cmd('l', 'LOGIN alice@example.test secret'), /^l OK/m);
  assert.match(await s.cmd('t2', 'STARTTLS'), /^t2 BAD STARTTLS not allowed/m);
  s.end();
});

test('plaintext from a non-loopback address: LOGINDISABLED and LOGIN refused', async () => {
  const relay = createServer((socket) => env.server.handle(socket, { id: 1, proto: 'imap', client: '192.0.2.7', clientPort: 1234, localAddress: '127.0.0.1', localPort: 143 }, { key: 'test' }));
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const port = (relay.address() as { port: number }).port;
  try {
    const c = await RawClient.connect(port);
    assert.match(await c.cmd('a', 'CAPABILITY'), /LOGINDISABLED/);
    assert.match(await c.cmd('b', 'LOGIN alice@example.test secret'), /^b NO \[PRIVACYREQUIRED\]/m);
    assert.match(await c.cmd('c', 'AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ='), /^c NO \[PRIVACYREQUIRED\]/m);
    c.end();
  } finally {
    relay.close();
  }
});

test('AUTHENTICATE PLAIN with a continuation, and cancellation', async () => {
  const c = await RawClient.connect(env.port);
  c.write('a AUTHENTICATE PLAIN\r\n');
  await c.until(/^\+ \r\n/m);
  c.write('*\r\n');
  assert.match(await c.until(/^a .*\r\n/m), /^a BAD Authentication cancelled/m);
  c.write('b AUTHENTICATE PLAIN\r\n');
  await c.until(/^\+ \r\n/m);
  c.write(Buffer.from('\0alice@example.test\0secret').toString('base64') + '\r\n');
  assert.match(await c.until(/^b .*\r\n/m), /^b OK/m);
  c.end();
});

test('autologout after the configured idle time', async () => {
  const c = await RawClient.connect(env.port);
  await c.cmd('l', 'LOGIN alice@example.test secret');
  const rest = await c.closedBy(3000);
  assert.match(rest, /^\* BYE Autologout/m);
});
