/*
 * Issue 4 "Bad input" and items 3-4 over real loopback sockets: every case gets its protocol answer,
 * nothing is queued that should not be, and the server goes on serving others.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rawClient, startTestServer, tlsClient, upgradeClient, type TestServer } from './env.js';

let env: TestServer;

before(async () => {
  env = await startTestServer({
    tls: true,
    limits: { messageSizeLimit: 20_000 },
    listeners: [{ name: 'mx', maxConnectionsPerClient: 100 }, { name: 'small', maxConnectionsPerClient: 2 }, { name: 'smtps', tls: 'implicit' }],
  });
});

after(async () => {
  await env.close();
});

async function session(lines: string[] = ['EHLO raw.example']) {
  const c = await rawClient(env.port('mx'));
  await c.replies(1);
  if (lines.length > 0) {
    c.send(lines.map((l) => `${l}\r\n`).join(''));
    await c.replies(1 + lines.length);
  }
  return c;
}


test('MAIL and RCPT before EHLO, DATA before RCPT: 503 5.5.1', async () => {
  const c = await session([]);
  c.send('MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nEHLO x\r\nMAIL FROM:<a@remote.test>\r\nDATA\r\nQUIT\r\n');
  assert.deepEqual((await c.replies(7)).slice(1), ['503 5.5.1 Error: send HELO/EHLO first', '503 5.5.1 Error: need MAIL command', '250 CHUNKING', '250 2.1.0 Ok', '503 5.5.1 Error: need RCPT command', '221 2.0.0 Bye']);
  await c.closed();
});

test('bad address syntax: 501 5.1.7 / 501 5.1.3 / 553 5.1.3 / 553 5.6.7', async () => {
  const c = await session();
  c.send('MAIL FROM:<a b@remote.test>\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@@example.test>\r\nRCPT TO:<@x:bob@example.test>\r\nRCPT TO:<"x@y"@example.test>\r\nRCPT TO:<bøb@example.test>\r\n');
  assert.deepEqual((await c.replies(8)).slice(2), [
    '501 5.1.7 Bad sender address syntax',
    '250 2.1.0 Ok',
    '501 5.1.3 Bad recipient address syntax',
    '553 5.1.3 Source routes are not accepted',
    '553 5.1.3 Quoted local parts with "@", "%" or "!" are not accepted',
    '553 5.6.7 Must declare SMTPUTF8 to send UTF-8 addresses',
  ]);
  c.socket.destroy();
});

test('unknown commands: 500 5.5.1, and after ten errors 421 4.7.0 and disconnect', async () => {
  const c = await session([]);
  c.send('BOGUS\r\n'.repeat(15));
  const replies = await c.replies(12);
  assert.equal(replies[1], '500 5.5.1 Error: command not recognized');
  assert.equal(replies[11], '421 4.7.0 mx.example.test Error: too many errors');
  await c.closed();
  assert.equal((await c.replies(0)).length, 12);
});

test('a 100 KB command line is refused with 500 5.5.2 and the session continues; NUL and bare CR refused', async () => {
  const c = await session();
  c.send(`MAIL FROM:<${'a'.repeat(100 * 1024)}@remote.test>\r\n`);
  c.send('NO\0OP\r\nNO\rOP\r\nNOOP\r\n');
  assert.deepEqual((await c.replies(6)).slice(2), ['500 5.5.2 Error: line too long', '500 5.5.2 Error: control character in command', '500 5.5.2 Error: bare <CR> received', '250 2.0.0 Ok']);
  c.socket.destroy();
});

test('a command line ended by a bare LF from outside mynetworks: 550 5.5.2 and disconnect', async () => {
  const c = await session();
  c.send('MAIL FROM:<a@remote.test>\nRCPT TO:<bob@example.test>\r\n');
  assert.equal((await c.replies(3))[2], '550 5.5.2 Error: bare <LF> received');
  await c.closed();
});

for (const [name, end] of [['<LF>.<CRLF>', '\n.\r\n'], ['<CR>.<CRLF>', '\r.\r\n'], ['<LF>.<LF>', '\n.\n'], ['<CRLF>.<LF>', '\r\n.\n']] as const) {
  test(`smuggling with ${name}: refused at the real end of data, the hidden transaction never runs`, async () => {
    const before = env.services.commits.length;
    const asked = env.services.senderQueries.length;
    const c = await session(['EHLO raw.example', 'MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'DATA']);
    c.send(`Subject: hi\r\n\r\nhello${end}MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: fake\r\n\r\nwire money\r\n.\r\nQUIT\r\n`);
    const replies = await c.replies(7);
    assert.match(replies[5]!, /^550 5\.5\.2 Error: bare <(LF|CR)> received$/);
    assert.equal(replies[6], '221 2.0.0 Bye');
    assert.equal(env.services.commits.length, before);
    assert.equal(env.services.senderQueries.length, asked + 1);
  });
}

test('message over the size limit (declared or sent): 552 5.3.4, nothing queued', async () => {
  const before = env.services.commits.length;
  const c = await session(['EHLO raw.example', 'MAIL FROM:<a@remote.test> SIZE=20001', 'MAIL FROM:<a@remote.test> SIZE=100', 'RCPT TO:<bob@example.test>', 'DATA']);
  assert.deepEqual((await c.replies(0)).slice(2), ['552 5.3.4 Message size exceeds fixed limit', '250 2.1.0 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>']);
  for (let i = 0; i < 50; i++) c.send(`${'y'.repeat(998)}\r\n`);
  c.send('.\r\n');
  assert.equal((await c.replies(7))[6], '552 5.3.4 Error: message file too big');
  assert.equal(env.services.commits.length, before);
  c.socket.destroy();
});

test('a client that disconnects in the middle of DATA: nothing queued', async () => {
  const before = env.services.commits.length;
  const c = await session(['EHLO raw.example', 'MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'DATA']);
  c.send('Subject: half\r\n\r\nthe first half\r\n');
  await new Promise((r) => setTimeout(r, 30));
  c.socket.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(env.services.commits.length, before);
  assert.ok(env.logs.some((l) => l['status'] === 'lost'));
});

test('STARTTLS: plaintext pipelined after it is discarded, the TLS session starts fresh', async () => {
  const c = await session();
  assert.match(c.received, /250-STARTTLS\r\n/);
  c.send('STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\n');
  assert.equal((await c.replies(3))[2], '220 2.0.0 Ready to start TLS');
  const asked = env.services.senderQueries.length;
  const s = await upgradeClient(c.socket);
  s.send('RCPT TO:<bob@example.test>\r\nEHLO raw.example\r\nRCPT TO:<bob@example.test>\r\nQUIT\r\n');
  assert.deepEqual(await s.replies(4), ['503 5.5.1 Error: need MAIL command', '250 CHUNKING', '503 5.5.1 Error: need MAIL command', '221 2.0.0 Bye']);
  assert.doesNotMatch(s.received, /STARTTLS/);
  assert.equal(env.services.senderQueries.length, asked);
  await s.closed();
});

test('a TLS handshake that fails ends that session only; the server keeps serving', async () => {
  const c = await session();
  c.send('STARTTLS\r\n');
  await c.replies(3);
  c.send('this is not a TLS ClientHello\r\n'.repeat(3));
  await c.closed();
  const plain = await rawClient(env.port('smtps'));
  plain.send('EHLO plaintext.example\r\n');
  await plain.closed();
  assert.equal(finalLines(plain.received), 0);
  const ok = await tlsClient(env.port('smtps'));
  assert.equal((await ok.replies(1))[0], '220 mx.example.test ESMTP Cartero');
  ok.send('EHLO tls.example\r\nQUIT\r\n');
  assert.equal((await ok.replies(3))[2], '221 2.0.0 Bye');
  assert.ok(env.logs.filter((l) => l['status'] === 'tls_failed').length >= 2);
});

function finalLines(text: string): number {
  return text.split('\r\n').filter((l) => /^\d{3} /.test(l)).length;
}

test('60 silent connections do not delay another client', async () => {
  const silent = await Promise.all(Array.from({ length: 60 }, () => rawClient(env.port('mx'))));
  try {
    const started = Date.now();
    const c = await session(['EHLO busy.example', 'MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'DATA']);
    c.send('Subject: prompt\r\n\r\nserved at once\r\n.\r\nQUIT\r\n');
    assert.match((await c.replies(7))[5]!, /^250 2\.0\.0 Ok: queued as Q\d+$/);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.ok(env.server.sessions() >= 60);
  } finally {
    for (const s of silent) s.socket.destroy();
  }
});

test('connections per client beyond the listener limit: 421 4.7.0', async () => {
  const held = [await rawClient(env.port('small')), await rawClient(env.port('small'))];
  const third = await rawClient(env.port('small'));
  await third.closed();
  assert.equal(third.received, '421 4.7.0 mx.example.test Too many connections, try again later\r\n');
  for (const h of held) h.socket.destroy();
});

test('SMTPUTF8: a UTF-8 address is accepted once declared', async () => {
  const before = env.services.commits.length;
  const c = await session(['EHLO raw.example', 'MAIL FROM:<jörg@remote.test> SMTPUTF8', 'RCPT TO:<bob@example.test>', 'DATA']);
  c.send('Subject: ü\r\n\r\nx\r\n.\r\n');
  assert.match((await c.replies(6))[5]!, /^250 2\.0\.0 Ok: queued/);
  const commit = env.services.commits[before]!;
  assert.equal(commit.envelope.sender, 'jörg@remote.test');
  assert.equal(commit.envelope.meta['smtputf8'], true);
  assert.match(commit.content.toString(), /with UTF8SMTP id/);
  c.socket.destroy();
});

