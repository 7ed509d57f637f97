import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { addedPrefix, RECEIVED_LINE } from '../../../test/smtp/fake-services.js';
import { endSessions, exchange, HOST, startSession } from '../../../test/smtp/harness.js';
import { ManualClock } from '../../net/clock.js';

afterEach(endSessions);

const MESSAGE = 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n..dot line\r\n';
const STUFFED = MESSAGE.replace(/^\./gm, '..');
const SENT = Buffer.from(MESSAGE);

test('greeting, EHLO keywords, a whole transaction committed with our Received: line', async () => {
  const h = startSession();
  assert.deepEqual(await h.client.replies(1), [`220 ${HOST} ESMTP Cartero`]);
  await exchange(h, ['EHLO client.example']);
  assert.match(h.client.received, /250-mx\.example\.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-XQUEUEID\r\n250 CHUNKING\r\n$/);
  assert.doesNotMatch(h.client.received, /STARTTLS|AUTH/);
  assert.deepEqual(await exchange(h, ['MAIL FROM:<carol@remote.test> BODY=8BITMIME RET=HDRS ENVID=env+2B1', 'RCPT TO:<bob@example.test> NOTIFY=FAILURE ORCPT=rfc822;bob@example.test', 'DATA']), [
    '250 2.1.0 Ok',
    '250 2.1.5 Ok',
    '354 End data with <CR><LF>.<CR><LF>',
  ]);
  assert.equal(h.services.commits.length, 0);
  h.client.send(`${STUFFED}.\r\n`);
  const [queued] = (await h.client.replies(6)).slice(5);
  assert.equal(queued, '250 2.0.0 Ok: queued as Q000001');
  const commit = h.services.commits[0]!;
  const prefix = addedPrefix(commit.content, SENT);
  assert.match(prefix, RECEIVED_LINE);
  assert.match(prefix, /^Received: from client\.example \(\[192\.0\.2\.10\]\)\r\n\tby mx\.example\.test \(Cartero\) with ESMTP id ID\d+\r\n\tfor <bob@example\.test>; /);
  assert.equal(commit.envelope.sender, 'carol@remote.test');
  assert.deepEqual(commit.envelope.recipients, [{ address: 'bob@example.test', orcpt: 'rfc822;bob@example.test', notify: ['FAILURE'] }]);
  // trace_bytes: the octets we put in front of the client's message
  assert.equal(commit.envelope.meta['trace_bytes'], Buffer.byteLength(prefix));
  assert.deepEqual(
    { ...commit.envelope.meta, received_id: 'x', trace_bytes: 0 },
    { client: '192.0.2.10', client_port: 40000, helo: 'client.example', protocol: 'ESMTP', auth_user: null, tls: false, listener: 'smtp.listen[0]', received_id: 'x', ret: 'HDRS', envid: 'env+1', body: '8BITMIME', smtputf8: false, trace_bytes: 0 },
  );
  assert.deepEqual(await exchange(h, ['QUIT']), ['221 2.0.0 Bye']);
  await h.client.closed();
  await h.client.until(() => h.logs.some((l) => l['msg'] === 'disconnect'), 1000, 'the disconnect log line');
  const disconnect = h.logs.find((l) => l['msg'] === 'disconnect');
  assert.equal(disconnect?.['commands'], 'ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5');
  const queuedLog = h.logs.find((l) => l['msg'] === 'queued');
  assert.deepEqual([queuedLog?.['queue_id'], queuedLog?.['sender'], queuedLog?.['nrcpt'], queuedLog?.['client']], ['Q000001', 'carol@remote.test', 1, '192.0.2.10']);
  assert.ok(h.logs.some((l) => l['msg'] === 'connect' && l['client'] === '192.0.2.10'));
});

test('PIPELINING: a group is answered in order, in one write', async () => {
  const h = startSession();
  await h.client.replies(1);
  await exchange(h, ['EHLO c']);
  const chunksBefore = h.client.chunks.length;
  const replies = await exchange(h, ['MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'RCPT TO:<nobody@example.test>', 'RCPT TO:<x@elsewhere.test>', 'NOOP', 'DATA']);
  assert.deepEqual(replies, [
    '250 2.1.0 Ok',
    '250 2.1.5 Ok',
    '550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown',
    '554 5.7.1 <x@elsewhere.test>: Relay access denied',
    '250 2.0.0 Ok',
    '354 End data with <CR><LF>.<CR><LF>',
  ]);
  assert.equal(h.client.chunks.length - chunksBefore, 1);
  // the message and QUIT pipelined behind it
  h.client.send('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  assert.deepEqual((await h.client.replies(10)).slice(8), ['250 2.0.0 Ok: queued as Q000001', '221 2.0.0 Bye']);
  assert.deepEqual(h.services.commits[0]?.envelope.recipients.map((r) => r.address), ['bob@example.test']);
  assert.ok(h.logs.some((l) => l['msg'] === 'reject' && l['code'] === 550 && l['recipient'] === 'nobody@example.test'));
});

test('sequence errors: MAIL before EHLO, RCPT before MAIL, DATA before RCPT, DATA with no valid recipient', async () => {
  const h = startSession();
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['MAIL FROM:<a@b.test>', 'RCPT TO:<bob@example.test>', 'DATA']), [
    '503 5.5.1 Error: send HELO/EHLO first',
    '503 5.5.1 Error: need MAIL command',
    '503 5.5.1 Error: need MAIL command',
  ]);
  assert.deepEqual(await exchange(h, ['HELO c', 'RCPT TO:<bob@example.test>', 'MAIL FROM:<a@b.test>', 'MAIL FROM:<a@b.test>', 'DATA', 'RCPT TO:<nobody@example.test>', 'DATA']), [
    '250 mx.example.test',
    '503 5.5.1 Error: need MAIL command',
    '250 2.1.0 Ok',
    '503 5.5.1 Error: nested MAIL command',
    '503 5.5.1 Error: need RCPT command',
    '550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown',
    '554 5.5.1 Error: no valid recipients',
  ]);
  assert.deepEqual(await exchange(h, ['RSET', 'RCPT TO:<bob@example.test>', 'VRFY bob', 'HELP', 'NOOP']), [
    '250 2.0.0 Ok',
    '503 5.5.1 Error: need MAIL command',
    '252 2.5.2 Cannot VRFY user',
    '214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH',
    '250 2.0.0 Ok',
  ]);
});

test('bad syntax answers 501 with the right enhanced code', async () => {
  const h = startSession();
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'MAIL FROM:alice@example.test', 'MAIL FROM:<a@b.test> SIZE=20000', 'MAIL FROM:<jörg@b.test>', 'MAIL FROM:<a@b.test>', 'RCPT TO:<@relay:bob@example.test>', 'RCPT TO:<"bob@x"@example.test>', 'RCPT TO:<bob>']), [
    '250 CHUNKING',
    '501 5.1.7 Bad sender address syntax',
    '552 5.3.4 Message size exceeds fixed limit',
    '553 5.6.7 Must declare SMTPUTF8 to send UTF-8 addresses',
    '250 2.1.0 Ok',
    '553 5.1.3 Source routes are not accepted',
    '553 5.1.3 Quoted local parts with "@", "%" or "!" are not accepted',
    '501 5.1.3 Bad recipient address syntax',
  ]);
});

test('too many errors: 421 4.7.0 and disconnect', async () => {
  const h = startSession({ settings: { maxErrors: 10 } });
  await h.client.replies(1);
  h.client.send('FOO\r\n'.repeat(12));
  const replies = await h.client.replies(12);
  assert.equal(replies.slice(1, 11).every((r) => r === '500 5.5.1 Error: command not recognized'), true);
  assert.equal(replies[11], `421 4.7.0 ${HOST} Error: too many errors`);
  await h.client.closed();
  assert.equal((await h.client.replies(0)).length, 12);
});

test('command lines: too long, NUL, bare CR answered; the session goes on', async () => {
  const h = startSession();
  await h.client.replies(1);
  h.client.send(`NOOP ${'x'.repeat(100 * 1024)}\r\nNO\0OP\r\nNO\rOP\r\nNOOP\r\n`);
  assert.deepEqual((await h.client.replies(5)).slice(1), [
    '500 5.5.2 Error: line too long',
    '500 5.5.2 Error: control character in command',
    '500 5.5.2 Error: bare <CR> received',
    '250 2.0.0 Ok',
  ]);
});

test('a command ended by a bare LF: refused and disconnected outside mynetworks, accepted inside', async () => {
  const outside = startSession();
  await outside.client.replies(1);
  outside.client.send('EHLO c\nMAIL FROM:<a@b.test>\r\n');
  assert.deepEqual((await outside.client.replies(2)).slice(1), ['550 5.5.2 Error: bare <LF> received']);
  await outside.client.closed();
  assert.equal(outside.services.senderQueries.length, 0);

  const inside = startSession({ peer: { trusted: true } });
  await inside.client.replies(1);
  inside.client.send('HELO c\nNOOP\n');
  assert.deepEqual((await inside.client.replies(3)).slice(1), ['250 mx.example.test', '250 2.0.0 Ok']);
});

test('recipients per message are bounded: 452 4.5.3', async () => {
  const services = new (await import('../../../test/smtp/fake-services.js')).FakeServices({
    accounts: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`u${i}@example.test`, 'x'])),
  });
  const h = startSession({ services, settings: { maxRecipients: 3 } });
  await h.client.replies(1);
  const replies = await exchange(h, ['EHLO c', 'MAIL FROM:<>', ...Array.from({ length: 5 }, (_, i) => `RCPT TO:<u${i}@example.test>`)]);
  assert.deepEqual(replies.slice(2), ['250 2.1.5 Ok', '250 2.1.5 Ok', '250 2.1.5 Ok', '452 4.5.3 Error: too many recipients', '452 4.5.3 Error: too many recipients']);
});

test('an address literal is a relay only for trusted or authenticated clients', async () => {
  const h = startSession();
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<user@[192.0.2.99]>']), ['250 CHUNKING', '250 2.1.0 Ok', '554 5.7.1 <user@[192.0.2.99]>: Relay access denied']);
  assert.equal(h.services.recipientQueries.length, 0);
  const t = startSession({ peer: { trusted: true } });
  await t.client.replies(1);
  assert.deepEqual(await exchange(t, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<user@[192.0.2.99]>']), ['250 CHUNKING', '250 2.1.0 Ok', '250 2.1.5 Ok']);
});

test('percent hack and bang path reach policy as plain local parts of our domain (and are unknown)', async () => {
  const h = startSession();
  await h.client.replies(1);
  const replies = await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<victim%remote.test@example.test>', 'RCPT TO:<remote.test!victim@example.test>']);
  assert.deepEqual(replies.slice(2).map((r) => r.slice(0, 9)), ['550 5.1.1', '550 5.1.1']);
  assert.deepEqual(h.services.recipientQueries.map((q) => q.recipient), ['victim%remote.test@example.test', 'remote.test!victim@example.test']);
});

test('message over the size limit: 552 5.3.4 at the terminator, nothing committed', async () => {
  const h = startSession({ settings: { messageSizeLimit: 100 } });
  await h.client.replies(1);
  await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA']);
  h.client.send(`${'x'.repeat(70)}\r\n`.repeat(50));
  h.client.send('.\r\nNOOP\r\n');
  assert.deepEqual((await h.client.replies(7)).slice(5), ['552 5.3.4 Error: message file too big', '250 2.0.0 Ok']);
  assert.equal(h.services.commits.length, 0);
});

test('commit: 250 only once it resolved; a failed commit is 451 4.3.0', async () => {
  const h = startSession();
  let open: () => void = () => undefined;
  h.services.gate = new Promise((r) => (open = r));
  await h.client.replies(1);
  await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA']);
  h.client.send('Subject: x\r\n\r\ny\r\n.\r\n');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await h.client.replies(0)).length, 5, 'no reply before the commit resolved');
  open();
  assert.equal((await h.client.replies(6))[5], '250 2.0.0 Ok: queued as Q000001');
  h.services.gate = null;
  h.services.failCommit = new Error('disk on fire');
  assert.deepEqual(await exchange(h, ['MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA', 'x', '.'], 4), ['250 2.1.0 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>', '451 4.3.0 Error: queue file write error']);
  assert.equal(h.services.commits.length, 1);
  assert.deepEqual(await exchange(h, ['RCPT TO:<bob@example.test>']), ['503 5.5.1 Error: need MAIL command']);
});

test('a client that disconnects in the middle of DATA: nothing committed', async () => {
  const h = startSession();
  await h.client.replies(1);
  await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA']);
  h.client.send('Subject: cut\r\n\r\npartial');
  h.client.stream.end();
  await h.client.closed();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.services.commits.length, 0);
  assert.ok(h.logs.some((l) => l['status'] === 'lost'));
  assert.ok(h.logs.some((l) => l['msg'] === 'disconnect'));
});

test('idle timeouts: 421 4.4.2 after the command timeout, and per data block', async () => {
  const clock = new ManualClock();
  const h = startSession({ clock, settings: { commandTimeoutMs: 300_000, dataTimeoutMs: 180_000 } });
  await h.client.replies(1);
  clock.advance(299_000);
  await exchange(h, ['EHLO c']);
  clock.advance(299_000);
  await exchange(h, ['MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA']);
  clock.advance(179_000);
  h.client.send('still typing\r\n');
  await new Promise((r) => setTimeout(r, 10));
  clock.advance(179_000);
  assert.equal(h.client.ended, false);
  clock.advance(1_000);
  assert.equal((await h.client.replies(6))[5], `421 4.4.2 ${HOST} Error: timeout exceeded`);
  await h.client.closed();
  assert.equal(h.services.commits.length, 0);

  const idle = startSession({ clock });
  await idle.client.replies(1);
  clock.advance(300_000);
  assert.equal((await idle.client.replies(2))[1], `421 4.4.2 ${HOST} Error: timeout exceeded`);
});

test('drain: an idle session gets 421 4.3.2 at once; one in DATA finishes and commits first', async () => {
  const idle = startSession();
  await idle.client.replies(1);
  await exchange(idle, ['EHLO c']);
  idle.session.drain();
  assert.equal((await idle.client.replies(3))[2], `421 4.3.2 ${HOST} Service shutting down, closing transmission channel`);
  await idle.client.closed();

  const busy = startSession();
  await busy.client.replies(1);
  await exchange(busy, ['EHLO c', 'MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'DATA']);
  busy.client.send('Subject: x\r\n\r\nfirst half\r\n');
  await new Promise((r) => setTimeout(r, 10));
  busy.session.drain();
  assert.equal(busy.client.ended, false);
  busy.client.send('second half\r\n.\r\nMAIL FROM:<>\r\n');
  const replies = await busy.client.replies(7);
  assert.deepEqual(replies.slice(5), ['250 2.0.0 Ok: queued as Q000001', `421 4.3.2 ${HOST} Service shutting down, closing transmission channel`]);
  await busy.client.closed();
  assert.match(busy.services.commits[0]!.content.toString(), /first half\r\nsecond half\r\n$/);
});

test('HELO gives the SMTP protocol keyword; RSET keeps HELO; EHLO drops the transaction', async () => {
  const h = startSession();
  await h.client.replies(1);
  await exchange(h, ['HELO old.client', 'MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'RCPT TO:<alice@example.test>', 'DATA', 'x', '.'], 6);
  assert.match(h.services.commits[0]!.content.toString(), /^Received: from old\.client \(\[192\.0\.2\.10\]\)\r\n\tby mx\.example\.test \(Cartero\) with SMTP id ID\d+;\r\n\t\w{3}, /);
  assert.deepEqual(await exchange(h, ['MAIL FROM:<>', 'EHLO new', 'RCPT TO:<bob@example.test>']), ['250 2.1.0 Ok', '250 CHUNKING', '503 5.5.1 Error: need MAIL command']);
});
