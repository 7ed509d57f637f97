/*
 * Hostile and broken clients over TCP against the POP3 server (embedded store; the parser and session
 * are the same on both backends): overlong lines, NUL, unknown commands, wrong state, bad message
 * numbers, garbage SASL, plaintext pipelined behind STLS, a slow client, a client that stops reading a
 * large RETR, a flood of pipelined commands, and a shutdown with sessions open.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rawClient, startTestServer, upgradeClient, type TestServer } from './env.js';
import { addAccount, deliver, inboxOf, openEmbedded, PASSWORD, sampleMessage, type TestStore } from './fixture.js';
import type { Account } from '../../src/store/index.js';

let ts: TestStore;
let env: TestServer;
let n = 0;

before(async () => {
  ts = await openEmbedded();
  env = await startTestServer(ts, { tls: true, limits: { maxBadCommands: 10 } });
});

after(async () => {
  await env.close();
  await ts.cleanup();
});

async function account(messages: Buffer[] = [sampleMessage(1), sampleMessage(2)]): Promise<Account> {
  const a = await addAccount(ts.store, `bad${++n}@example.test`);
  await deliver(ts.store, a, messages);
  return a;
}

async function loggedIn(a: Account, port = env.port) {
  const c = await rawClient(port);
  assert.match((await c.response()).status, /^\+OK/);
  assert.equal(await c.cmd(`USER ${a.address}`), '+OK Send PASS');
  assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK Logged in/);
  return c;
}

test('a 1 MB command line and a NUL are answered, the connection is kept', async () => {
  const a = await account();
  const c = await loggedIn(a);
  assert.equal(await c.cmd(`LIST ${'9'.repeat(1024 * 1024)}`), '-ERR Command line too long');
  assert.equal(await c.cmd('LI\0ST'), '-ERR Control characters are not allowed in commands');
  assert.equal(await c.cmd('STAT\r'), '-ERR Control characters are not allowed in commands');
  assert.match(await c.cmd('STAT'), /^\+OK 2 \d+$/);
  assert.equal(await c.cmd('QUIT'), '+OK Logging out, 0 messages deleted, 2 left');
});

test('commands in the wrong state, bad message numbers, TOP with negative and huge arguments', async () => {
  const a = await account();
  const c = await rawClient(env.port);
  await c.response();
  assert.equal(await c.cmd('RETR 1'), '-ERR RETR is not valid in the AUTHORIZATION state');
  assert.equal(await c.cmd('DELE 1'), '-ERR DELE is not valid in the AUTHORIZATION state');
  assert.equal(await c.cmd(`USER ${a.address}`), '+OK Send PASS');
  assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
  assert.equal(await c.cmd('STLS'), '-ERR STLS is not valid in the TRANSACTION state');
  assert.equal(await c.cmd('DELE 2'), '+OK Message 2 deleted');
  assert.equal(await c.cmd('RETR 2'), '-ERR Message is deleted');
  assert.equal(await c.cmd('TOP 2 0'), '-ERR Message is deleted');
  assert.equal(await c.cmd('RETR 3'), '-ERR No such message');
  assert.equal(await c.cmd('RETR 0'), '-ERR No such message');
  assert.equal(await c.cmd('TOP 1 -5'), '-ERR TOP needs a message number and a non-negative number of lines');
  assert.equal(await c.cmd('TOP -1 5'), '-ERR TOP needs a message number and a non-negative number of lines');
  const huge = await c.multi('TOP 1 18446744073709551617');
  assert.ok(huge.body.equals(sampleMessage(1)));
  assert.equal(await c.cmd('RSET'), `+OK 2 messages (${sampleMessage(1).length + sampleMessage(2).length} octets)`);
  assert.equal(await c.cmd('QUIT'), '+OK Logging out, 0 messages deleted, 2 left');
});

test('unknown commands: -ERR each, then the connection is closed after ten bad commands', async () => {
  const c = await rawClient(env.port);
  await c.response();
  c.send('HELO x\r\nEHLO x\r\nAPOP a b\r\nXTND XMIT\r\n\r\nFOO\r\nBAR\r\nBAZ\r\nQUX\r\nLAST\r\nNEVER\r\n');
  for (let i = 0; i < 10; i++) assert.equal((await c.response()).status, '-ERR Unknown command');
  assert.equal((await c.response()).status, '-ERR Too many bad commands, closing connection');
  await c.closed();
  assert.equal(c.unread, '', 'nothing answered after the close');
});

test('AUTH with garbage base64, a bad mechanism and a cancelled exchange', async () => {
  const c = await rawClient(env.port);
  await c.response();
  assert.equal(await c.cmd('AUTH PLAIN ***garbage***'), '-ERR Invalid base64 in the SASL response');
  assert.equal(await c.cmd('AUTH PLAIN AGFsaWNl'), '-ERR [AUTH] Authentication failed');
  assert.equal(await c.cmd('AUTH GSSAPI'), '-ERR Unsupported authentication mechanism');
  assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await c.cmd('=garbage='), '-ERR Invalid base64 in the SASL response');
  assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await c.cmd('*'), '-ERR Authentication cancelled');
  assert.equal(await c.cmd('QUIT'), '+OK Bye');
  await c.closed();
});

test('plaintext pipelined behind STLS is thrown away, not run after the handshake', async () => {
  const a = await account();
  const c = await rawClient(env.port);
  await c.response();
  c.send(`STLS\r\nUSER ${a.address}\r\nPASS ${PASSWORD}\r\n`);
  assert.equal((await c.response()).status, '+OK Begin TLS negotiation');
  const secure = await upgradeClient(c.socket);
  assert.equal(await secure.cmd(`PASS ${PASSWORD}`), '-ERR Send USER first', 'the USER sent in plaintext was dropped');
  assert.equal(await secure.cmd(`USER ${a.address}`), '+OK Send PASS');
  assert.match(await secure.cmd(`PASS ${PASSWORD}`), /^\+OK Logged in/);
  assert.equal(await secure.cmd('QUIT'), '+OK Logging out, 0 messages deleted, 2 left');
});

test('a flood of pipelined commands is answered in order', async () => {
  const a = await account();
  const c = await loggedIn(a);
  const count = 3000;
  c.send(Array.from({ length: count }, (_, i) => (i % 2 ? 'NOOP\r\n' : `LIST ${1 + (i % 3)}\r\n`)).join(''));
  for (let i = 0; i < count; i++) {
    const status = (await c.response()).status;
    if (i % 2) assert.equal(status, '+OK');
    else if (i % 3 === 2) assert.equal(status, '-ERR No such message');
    else assert.match(status, new RegExp(`^\\+OK ${1 + (i % 3)} \\d+$`));
  }
  assert.equal(await c.cmd('QUIT'), '+OK Logging out, 0 messages deleted, 2 left');
});

test('a dropped connection after DELE deletes nothing and frees the maildrop at once', async () => {
  const a = await account();
  const c = await loggedIn(a);
  assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
  c.socket.destroy();
  await c.until(() => env.locks.size === 0, 3000, 'the lock to be released');
  const again = await loggedIn(a);
  assert.match(await again.cmd('STAT'), /^\+OK 2 /);
  assert.equal((await ts.store.messages.list(await inboxOf(ts.store, a))).length, 2);
  await again.cmd('QUIT');
});

test('wrong passwords: delayed, then the address is locked out and disconnected', async () => {
  const a = await account();
  const local = await startTestServer(ts, { limits: { authFailureDelayMs: 100, maxAuthFailures: 3 } });
  try {
    const c = await rawClient(local.port);
    await c.response();
    for (let i = 0; i < 2; i++) {
      await c.cmd(`USER ${a.address}`);
      const started = Date.now();
      assert.equal(await c.cmd('PASS wrong'), '-ERR [AUTH] Authentication failed');
      assert.ok(Date.now() - started >= 95, 'the failure is delayed');
    }
    await c.cmd(`USER ${a.address}`);
    assert.equal(await c.cmd('PASS wrong'), '-ERR [AUTH] Too many authentication failures from your address, try again later');
    await c.closed();
    const next = await rawClient(local.port);
    await next.response();
    await next.cmd(`USER ${a.address}`);
    assert.equal(await next.cmd(`PASS ${PASSWORD}`), '-ERR [AUTH] Too many authentication failures from your address, try again later');
    await next.closed();
  } finally {
    await local.close();
  }
});

test('slow clients: an idle one is disconnected, one that stops reading a big RETR is dropped and unlocked', async () => {
  const big = Buffer.from(`Subject: big\r\n\r\n${`${'y'.repeat(78)}\r\n`.repeat(100_000)}`);
  const a = await account([big]);
  const local = await startTestServer(ts, { limits: { idleTimeoutMs: 300 } });
  try {
    const idle = await rawClient(local.port);
    await idle.response();
    assert.equal((await idle.response(false, 3000)).status, '-ERR Disconnected for inactivity');
    await idle.closed();

    const c = await rawClient(local.port);
    await c.response();
    await c.cmd(`USER ${a.address}`);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK Logged in/);
    c.socket.pause();
    c.send('RETR 1\r\n');
    await c.until(() => local.locks.size === 0, 5000, 'the stalled session to be dropped');
    assert.ok(local.logs.some((l) => l['msg'] === 'client stopped reading'));
    assert.ok(local.logs.some((l) => l['msg'] === 'logout' && l['status'] === 'timeout' && l['retrieved'] === 0));
    c.socket.destroy();
  } finally {
    await local.close();
  }
});

test('shutdown: open sessions are told and closed without UPDATE; new connections are refused', async () => {
  const a = await account();
  const local = await startTestServer(ts);
  const c = await rawClient(local.port);
  await c.response();
  await c.cmd(`USER ${a.address}`);
  await c.cmd(`PASS ${PASSWORD}`);
  assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
  assert.equal(local.server.sessions(), 1);
  await local.server.drain(2000);
  assert.equal((await c.response()).status, '-ERR [SYS/TEMP] Server shutting down');
  await c.closed();
  assert.equal(local.server.sessions(), 0);
  assert.equal((await ts.store.messages.list(await inboxOf(ts.store, a))).length, 2);
  const late = await rawClient(local.port);
  assert.equal((await late.response()).status, '-ERR [SYS/TEMP] Server shutting down');
  await local.close();
});
