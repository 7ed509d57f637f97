import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { addedPrefix } from '../../../../test/smtp/fake-services.js';
import { endSessions, exchange, HOST, startSession } from '../../../../test/smtp/harness.js';
import { AuthLimiter } from '../../../auth/limiter.js';
import { ManualClock } from '../../../net/clock.js';

afterEach(endSessions);

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const PLAIN_OK = b64('\0alice@example.test\0secret');
const PLAIN_BAD = b64('\0alice@example.test\0guess');
const loopback = { address: '127.0.0.1', loopback: true, trusted: false };

test('AUTH is neither offered nor accepted in plaintext from a remote client', async () => {
  const h = startSession();
  await h.client.replies(1);
  await exchange(h, ['EHLO c']);
  assert.doesNotMatch(h.client.received, /AUTH/);
  assert.deepEqual(await exchange(h, [`AUTH PLAIN ${PLAIN_OK}`]), ['538 5.7.11 Encryption required for requested authentication mechanism']);
  assert.equal(h.services.authAttempts.length, 0);
});

test('AUTH is offered over TLS and on loopback', async () => {
  for (const options of [{ tls: true }, { peer: loopback }]) {
    const h = startSession(options);
    await h.client.replies(1);
    await exchange(h, ['EHLO c']);
    assert.match(h.client.received, /250-AUTH PLAIN LOGIN\r\n/);
  }
});

test('AUTH PLAIN with an initial response, then no second AUTH', async () => {
  const h = startSession({ peer: loopback });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', `AUTH PLAIN ${PLAIN_OK}`, `AUTH PLAIN ${PLAIN_OK}`]), ['250 CHUNKING', '235 2.7.0 Authentication successful', '503 5.5.1 Error: already authenticated']);
  assert.equal(h.session.authUser, 'alice@example.test');
});

test('AUTH PLAIN without initial response, and AUTH LOGIN', async () => {
  const h = startSession({ peer: loopback });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'AUTH PLAIN']), ['250 CHUNKING', '334 ']);
  assert.deepEqual(await exchange(h, [PLAIN_OK]), ['235 2.7.0 Authentication successful']);
  const l = startSession({ peer: loopback });
  await l.client.replies(1);
  assert.deepEqual(await exchange(l, ['EHLO c', 'AUTH LOGIN']), ['250 CHUNKING', '334 VXNlcm5hbWU6']);
  assert.deepEqual(await exchange(l, [b64('bob@example.test')]), ['334 UGFzc3dvcmQ6']);
  assert.deepEqual(await exchange(l, [b64('hunter2')]), ['235 2.7.0 Authentication successful']);
  const li = startSession({ peer: loopback });
  await li.client.replies(1);
  assert.deepEqual(await exchange(li, ['EHLO c', `AUTH LOGIN ${b64('bob@example.test')}`, b64('hunter2')]), ['250 CHUNKING', '334 UGFzc3dvcmQ6', '235 2.7.0 Authentication successful']);
});

test('AUTH exchange errors: abort, bad base64, unknown mechanism, during a transaction, before EHLO', async () => {
  const h = startSession({ peer: loopback });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['AUTH PLAIN', 'EHLO c', 'AUTH LOGIN', '*', 'AUTH PLAIN', 'not base64!', 'AUTH CRAM-MD5', 'MAIL FROM:<>', `AUTH PLAIN ${PLAIN_OK}`]), [
    '503 5.5.1 Error: send HELO/EHLO first',
    '250 CHUNKING',
    '334 VXNlcm5hbWU6',
    '501 5.0.0 Authentication aborted',
    '334 ',
    '501 5.5.2 Error: cannot decode response',
    '504 5.5.4 Unrecognized authentication type',
    '250 2.1.0 Ok',
    '503 5.5.1 Error: MAIL transaction in progress',
  ]);
});

test('a failed AUTH is answered only after the delay; a failing backend is 454', async () => {
  const clock = new ManualClock();
  const h = startSession({ peer: loopback, clock, settings: { authFailureDelayMs: 1000 } });
  await h.client.replies(1);
  await exchange(h, ['EHLO c']);
  h.client.send(`AUTH PLAIN ${PLAIN_BAD}\r\n`);
  await h.client.until(() => h.services.authAttempts.length === 1, 1000, 'the attempt');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await h.client.replies(0)).length, 2);
  clock.advance(999);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await h.client.replies(0)).length, 2);
  clock.advance(1);
  assert.equal((await h.client.replies(3))[2], '535 5.7.8 Error: authentication failed');
  h.services.authenticate = async () => {
    throw new Error('directory down');
  };
  assert.deepEqual(await exchange(h, [`AUTH PLAIN ${PLAIN_OK}`]), ['454 4.7.0 Temporary authentication failure']);
});

test('too many failures per client address, across sessions: 421 4.7.0 and disconnect', async () => {
  const limiter = new AuthLimiter({ maxFailures: 5, windowMs: 600_000 });
  const first = startSession({ peer: loopback, authLimiter: limiter });
  await first.client.replies(1);
  assert.deepEqual(await exchange(first, ['EHLO c', ...Array(3).fill(`AUTH PLAIN ${PLAIN_BAD}`)]), ['250 CHUNKING', ...Array(3).fill('535 5.7.8 Error: authentication failed')]);
  const second = startSession({ peer: loopback, authLimiter: limiter });
  await second.client.replies(1);
  assert.deepEqual(await exchange(second, ['EHLO c', `AUTH PLAIN ${PLAIN_BAD}`, `AUTH PLAIN ${PLAIN_BAD}`]), [
    '250 CHUNKING',
    '535 5.7.8 Error: authentication failed',
    `421 4.7.0 ${HOST} Error: too many authentication failures`,
  ]);
  await second.client.closed();
  const third = startSession({ peer: loopback, authLimiter: limiter });
  await third.client.replies(1);
  assert.deepEqual(await exchange(third, ['EHLO c', `AUTH PLAIN ${PLAIN_OK}`]), ['250 CHUNKING', `421 4.7.0 ${HOST} Error: too many authentication failures`]);
  // another address is not affected
  const other = startSession({ peer: { ...loopback, address: '127.0.0.2' }, authLimiter: limiter });
  await other.client.replies(1);
  assert.deepEqual(await exchange(other, ['EHLO c', `AUTH PLAIN ${PLAIN_OK}`]), ['250 CHUNKING', '235 2.7.0 Authentication successful']);
});

test('submission: AUTH required before MAIL, own sender only, Date and Message-ID added when missing', async () => {
  const h = startSession({ peer: loopback, settings: { submission: true } });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'MAIL FROM:<alice@example.test>', `AUTH PLAIN ${PLAIN_OK}`, 'MAIL FROM:<bob@example.test>', 'MAIL FROM:<alice@example.test>', 'RCPT TO:<someone@remote.test>', 'DATA']), [
    '250 CHUNKING',
    '530 5.7.0 Authentication required',
    '235 2.7.0 Authentication successful',
    '553 5.7.1 <bob@example.test>: Sender address rejected: not owned by user alice@example.test',
    '250 2.1.0 Ok',
    '250 2.1.5 Ok',
    '354 End data with <CR><LF>.<CR><LF>',
  ]);
  const bare = 'From: alice@example.test\r\nSubject: no date\r\n\r\nbody\r\n';
  h.client.send(`${bare}.\r\n`);
  await h.client.replies(9);
  const prefix = addedPrefix(h.services.commits[0]!.content, Buffer.from(bare));
  assert.match(prefix, /^Received: from c \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Cartero\) with ESMTPA id (ID\d+)\r\n\tfor <someone@remote\.test>; [^\r]+\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\nMessage-ID: <ID\d+\.ID\d+@mx\.example\.test>\r\n$/);
  assert.equal(h.services.commits[0]!.envelope.meta['auth_user'], 'alice@example.test');
  const full = 'Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMessage-Id: <mine@client>\r\n\r\nbody\r\n';
  await exchange(h, ['MAIL FROM:<alice@example.test>', 'RCPT TO:<someone@remote.test>', 'DATA', `${full}.`], 4);
  assert.match(addedPrefix(h.services.commits[1]!.content, Buffer.from(full)), /^Received: [^]*\d\d:\d\d:\d\d \+0000\r\n$/);
  assert.doesNotMatch(addedPrefix(h.services.commits[1]!.content, Buffer.from(full)), /Date:|Message-ID:/);
});

test('a malformed response line ends the exchange; credentials never appear in the log', async () => {
  const h = startSession({ peer: loopback });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'AUTH LOGIN', `${'A'.repeat(13000)}`, 'NOOP']), [
    '250 CHUNKING',
    '334 VXNlcm5hbWU6',
    '500 5.5.2 Error: line too long',
    '250 2.0.0 Ok',
  ]);
  assert.deepEqual(await exchange(h, ['AUTH LOGIN', b64('bob@example.test'), b64('wrong-password')]), ['334 VXNlcm5hbWU6', '334 UGFzc3dvcmQ6', '535 5.7.8 Error: authentication failed']);
  const text = JSON.stringify(h.logs);
  assert.doesNotMatch(text, new RegExp(b64('wrong-password').slice(0, 8)));
  assert.doesNotMatch(text, /wrong-password/);
});
