import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { addAccount, deliver, inboxOf, openEmbedded, PASSWORD, sampleMessage, type TestStore } from '../../../test/pop3/fixture.js';
import { unstuff } from '../../../test/pop3/client.js';
import { endSessions, shared, startSession, type Harness } from '../../../test/pop3/harness.js';
import { ManualClock } from '../../net/clock.js';
import { LocalMaildropLocks } from '../lock.js';
import type { Account, Store } from '../../store/index.js';

let ts: TestStore;
let store: Store;
let n = 0;

before(async () => {
  ts = await openEmbedded();
  store = ts.store;
});
afterEach(endSessions);
after(async () => ts.cleanup());

/** A fresh account with `count` sample messages. */
async function mailbox(count: number): Promise<{ account: Account; messages: Buffer[]; uids: number[] }> {
  const account = await addAccount(store, `user${++n}@example.test`);
  const messages = Array.from({ length: count }, (_, i) => sampleMessage(i + 1, i));
  const uids = await deliver(store, account, messages);
  return { account, messages, uids };
}

async function login(h: Harness, account: Account): Promise<string> {
  assert.match((await h.client.response()).status, /^\+OK pop\.example\.test Cartero POP3 server ready$/);
  assert.equal(await h.client.cmd(`USER ${account.address}`), '+OK Send PASS');
  return h.client.cmd(`PASS ${PASSWORD}`);
}

async function flagsOf(account: Account): Promise<Map<number, string[]>> {
  const list = await store.messages.list(await inboxOf(store, account));
  return new Map(list.map((m) => [m.uid, m.flags]));
}

test('a whole session: CAPA, login, STAT/LIST/UIDL/TOP/RETR/DELE/RSET, QUIT expunges exactly the marked messages', async () => {
  const { account, messages, uids } = await mailbox(3);
  const s = shared(store);
  const h = startSession(s);
  assert.equal((await h.client.response()).status.slice(0, 3), '+OK');
  const capa = await h.client.multi('CAPA');
  assert.deepEqual(capa.lines, ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'SASL PLAIN', 'IMPLEMENTATION Cartero']);
  assert.equal(await h.client.cmd(`USER ${account.address}`), '+OK Send PASS');
  const sizes = messages.map((m) => m.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.equal(await h.client.cmd(`PASS ${PASSWORD}`), `+OK Logged in, 3 messages (${total} octets)`);
  assert.equal(await h.client.cmd('STAT'), `+OK 3 ${total}`);
  assert.deepEqual((await h.client.multi('LIST')).lines, sizes.map((size, i) => `${i + 1} ${size}`));
  assert.equal(await h.client.cmd('LIST 2'), `+OK 2 ${sizes[1]}`);
  const inbox = await store.mailboxes.get(account.id, 'INBOX');
  assert.deepEqual((await h.client.multi('UIDL')).lines, uids.map((uid, i) => `${i + 1} ${inbox!.uidValidity}.${uid}`));
  assert.equal(await h.client.cmd('UIDL 3'), `+OK 3 ${inbox!.uidValidity}.${uids[2]}`);
  const retr = await h.client.multi('RETR 1');
  assert.equal(retr.status, `+OK ${sizes[0]} octets`);
  assert.ok(retr.body.equals(messages[0]!), 'RETR returns the stored bytes');
  const topped = await h.client.multi('TOP 2 1');
  const head = messages[1]!.toString().split('\r\n\r\n')[0]!;
  assert.equal(topped.body.toString(), `${head}\r\n\r\n.leading dot\r\n`);
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  assert.equal(await h.client.cmd('DELE 1'), '-ERR Message is deleted');
  assert.equal(await h.client.cmd('RETR 1'), '-ERR Message is deleted');
  assert.equal(await h.client.cmd('LIST 1'), '-ERR Message is deleted');
  assert.equal(await h.client.cmd('STAT'), `+OK 2 ${total - sizes[0]!}`);
  assert.deepEqual((await h.client.multi('LIST')).lines, [`2 ${sizes[1]}`, `3 ${sizes[2]}`]);
  assert.equal(await h.client.cmd('RSET'), `+OK 3 messages (${total} octets)`);
  assert.equal(await h.client.cmd('DELE 3'), '+OK Message 3 deleted');
  assert.equal(await h.client.cmd('NOOP'), '+OK');
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 1 message deleted, 2 left');
  await h.client.closed();
  await h.closed;
  const flags = await flagsOf(account);
  assert.deepEqual([...flags.keys()], [uids[0], uids[1]]);
  assert.deepEqual(flags.get(uids[0]!), ['\\Seen'], 'RETR sets \\Seen');
  assert.deepEqual(flags.get(uids[1]!), [], 'TOP does not');
  const loginLine = h.logs.find((l) => l['msg'] === 'login');
  assert.deepEqual([loginLine?.['user'], loginLine?.['messages'], loginLine?.['method']], [account.address, 3, 'USER']);
  const logout = h.logs.find((l) => l['msg'] === 'logout');
  assert.deepEqual(
    [logout?.['user'], logout?.['status'], logout?.['retrieved'], logout?.['retrieved_bytes'], logout?.['deleted'], logout?.['top']],
    [account.address, 'quit', 1, sizes[0], 1, 1],
  );
});

test('a dropped connection deletes nothing, keeps \\Seen and releases the maildrop', async () => {
  const { account, uids } = await mailbox(2);
  const locks = new LocalMaildropLocks();
  const s = { ...shared(store), locks };
  const h = startSession(s);
  assert.match(await login(h, account), /^\+OK Logged in/);
  assert.equal(locks.size, 1);
  await h.client.multi('RETR 2');
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  h.client.stream.destroy();
  await h.closed;
  const flags = await flagsOf(account);
  assert.deepEqual([...flags.keys()], uids);
  assert.deepEqual(flags.get(uids[1]!), ['\\Seen']);
  assert.equal(locks.size, 0);
  const logout = h.logs.find((l) => l['msg'] === 'logout');
  assert.deepEqual([logout?.['status'], logout?.['deleted'], logout?.['marked']], ['disconnected', 0, 1]);
});

test('one session per maildrop: the second login gets -ERR [IN-USE] until the first QUITs', async () => {
  const { account } = await mailbox(1);
  const s = shared(store);
  const first = startSession(s);
  assert.match(await login(first, account), /^\+OK/);
  const second = startSession(s);
  assert.equal(await login(second, account), '-ERR [IN-USE] Maildrop is locked by another POP3 session');
  assert.equal(await second.client.cmd('STAT'), '-ERR STAT is not valid in the AUTHORIZATION state');
  assert.match(await first.client.cmd('QUIT'), /^\+OK Logging out/);
  assert.equal(await second.client.cmd(`USER ${account.address}`), '+OK Send PASS');
  assert.match(await second.client.cmd(`PASS ${PASSWORD}`), /^\+OK Logged in, 1 message /);
});

test('plaintext login outside TLS and loopback: refused with a reason, not offered in CAPA', async () => {
  const { account } = await mailbox(0);
  const s = shared(store);
  const noTls = startSession(s, { peer: { loopback: false } });
  await noTls.client.response();
  assert.deepEqual((await noTls.client.multi('CAPA')).lines, ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'IMPLEMENTATION Cartero']);
  assert.equal(await noTls.client.cmd(`USER ${account.address}`), '-ERR [SYS/PERM] Plaintext authentication is disallowed on non-secure connections and this server has no TLS');
  assert.equal(await noTls.client.cmd('STLS'), '-ERR STLS is not available on this server');

  const tlsLater = startSession(s, { peer: { loopback: false }, settings: { tlsAvailable: true } });
  await tlsLater.client.response();
  assert.ok((await tlsLater.client.multi('CAPA')).lines.includes('STLS'));
  assert.equal(await tlsLater.client.cmd(`USER ${account.address}`), '-ERR [AUTH] Plaintext authentication is disallowed on non-secure connections: use STLS first');
  const plain = Buffer.from(`\0${account.address}\0${PASSWORD}`).toString('base64');
  assert.equal(await tlsLater.client.cmd(`AUTH PLAIN ${plain}`), '-ERR [AUTH] Plaintext authentication is disallowed on non-secure connections: use STLS first');

  const overTls = startSession(s, { peer: { loopback: false }, tls: true, settings: { tlsAvailable: true } });
  await overTls.client.response();
  const caps = (await overTls.client.multi('CAPA')).lines;
  assert.ok(caps.includes('USER') && !caps.includes('STLS'));
  assert.equal(await overTls.client.cmd('STLS'), '-ERR Command not permitted when TLS is active');
  assert.match(await overTls.client.cmd(`AUTH PLAIN ${plain}`), /^\+OK Logged in/);
});

test('AUTH PLAIN: initial response, continuation, "*" cancel, garbage base64, foreign authzid, other mechanisms', async () => {
  const { account } = await mailbox(1);
  const s = shared(store);
  const h = startSession(s);
  await h.client.response();
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  assert.deepEqual((await h.client.multi('AUTH')).lines, ['PLAIN']);
  assert.equal(await h.client.cmd('AUTH CRAM-MD5'), '-ERR Unsupported authentication mechanism');
  assert.equal(await h.client.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await h.client.cmd('*'), '-ERR Authentication cancelled');
  assert.equal(await h.client.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await h.client.cmd('!!!not base64!!!'), '-ERR Invalid base64 in the SASL response');
  assert.equal(await h.client.cmd('AUTH PLAIN %%%%'), '-ERR Invalid base64 in the SASL response');
  assert.equal(await h.client.cmd('AUTH PLAIN ='), '-ERR [AUTH] Authentication failed');
  assert.equal(await h.client.cmd(`AUTH PLAIN ${b64(`someone@example.test\0${account.address}\0${PASSWORD}`)}`), '-ERR [AUTH] Authentication failed');
  assert.equal(await h.client.cmd(`AUTH PLAIN ${b64(`\0${account.address}\0wrong`)}`), '-ERR [AUTH] Authentication failed');
  assert.equal(await h.client.cmd('AUTH PLAIN'), '+ ');
  assert.match(await h.client.cmd(b64(`${account.address}\0${account.address}\0${PASSWORD}`)), /^\+OK Logged in, 1 message/);
  assert.equal(await h.client.cmd('AUTH PLAIN'), '-ERR AUTH is not valid in the TRANSACTION state');
  const failures = h.logs.filter((l) => l['status'] === 'auth_failed');
  assert.equal(failures.length, 3);
  assert.ok(!JSON.stringify(h.logs).includes(PASSWORD), 'passwords never reach the log');
});

test('a SASL response over the limit is refused and ends the exchange', async () => {
  const s = shared(store);
  const h = startSession(s);
  await h.client.response();
  assert.equal(await h.client.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await h.client.cmd('A'.repeat(9000)), '-ERR SASL response too long');
  assert.equal(await h.client.cmd('NOOP'), '-ERR NOOP is not valid in the AUTHORIZATION state');
  // a response within the 8 KB limit but over the 255-octet command limit is read as a response
  assert.equal(await h.client.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await h.client.cmd('QUFB'.repeat(500)), '-ERR [AUTH] Authentication failed');
});

test('failed logins are delayed (injected clock) and the client address is locked out after five', async () => {
  const { account } = await mailbox(0);
  const clock = new ManualClock();
  const s = shared(store, clock);
  const h = startSession(s, { settings: { authFailureDelayMs: 1000 } });
  await h.client.response();
  for (let i = 1; i <= 5; i++) {
    h.client.send(`USER ${account.address}\r\nPASS wrong${i}\r\n`);
    assert.equal((await h.client.response()).status, '+OK Send PASS');
    await h.client.until(() => clock.pending === 1, 3000, 'the failure delay to start');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.client.unread, '', 'no answer before the delay');
    clock.advance(1000);
    const answer = (await h.client.response()).status;
    if (i < 5) assert.equal(answer, '-ERR [AUTH] Authentication failed');
    else assert.equal(answer, '-ERR [AUTH] Too many authentication failures from your address, try again later');
  }
  await h.client.closed();
  // the right password from the same address is refused without a check while locked out
  const again = startSession(s);
  await again.client.response();
  assert.equal(await again.client.cmd(`USER ${account.address}`), '+OK Send PASS');
  assert.equal(await again.client.cmd(`PASS ${PASSWORD}`), '-ERR [AUTH] Too many authentication failures from your address, try again later');
  await again.client.closed();
  // another address is not affected
  const other = startSession(s, { peer: { address: '192.0.2.77' } });
  assert.match(await login(other, account), /^\+OK Logged in/);
});

test('bad input: unknown commands, wrong state, syntax, overlong line, NUL; too many bad commands closes', async () => {
  const { account } = await mailbox(2);
  const s = shared(store);
  const h = startSession(s, { settings: { maxBadCommands: 12 } });
  assert.match(await login(h, account), /^\+OK/);
  assert.equal(await h.client.cmd('FOO'), '-ERR Unknown command');
  assert.equal(await h.client.cmd('USER x@example.test'), '-ERR USER is not valid in the TRANSACTION state');
  assert.equal(await h.client.cmd('PASS x'), '-ERR PASS is not valid in the TRANSACTION state');
  assert.equal(await h.client.cmd('TOP 1 -1'), '-ERR TOP needs a message number and a non-negative number of lines');
  assert.equal(await h.client.cmd('RETR'), '-ERR RETR needs a message number');
  assert.equal(await h.client.cmd(`NOOP ${'x'.repeat(1024 * 1024)}`), '-ERR Command line too long');
  assert.equal(await h.client.cmd('NO\0OP'), '-ERR Control characters are not allowed in commands');
  // not protocol errors: answers about messages
  assert.equal(await h.client.cmd('RETR 0'), '-ERR No such message');
  assert.equal(await h.client.cmd('RETR 3'), '-ERR No such message');
  assert.equal(await h.client.cmd('RETR 99999999999999999999'), '-ERR No such message');
  assert.equal(await h.client.cmd('DELE 3'), '-ERR No such message');
  assert.equal(await h.client.cmd('TOP 3 0'), '-ERR No such message');
  const huge = await h.client.multi('TOP 1 99999999999999999999');
  assert.equal(huge.status, '+OK');
  assert.equal(huge.body.toString(), sampleMessage(1, 0).toString());
  assert.equal(await h.client.cmd('NOOP'), '+OK');
  for (let i = 8; i < 12; i++) assert.equal(await h.client.cmd('XYZZY'), '-ERR Unknown command');
  assert.equal(await h.client.cmd('XYZZY'), '-ERR Unknown command');
  assert.equal((await h.client.response()).status, '-ERR Too many bad commands, closing connection');
  await h.client.closed();
  await h.closed;
  assert.equal((await store.messages.list(await inboxOf(store, account))).length, 2, 'no UPDATE');
  assert.equal(h.logs.find((l) => l['msg'] === 'logout')?.['status'], 'too_many_errors');
});

test('pipelined commands are answered in order', async () => {
  const { account, messages } = await mailbox(2);
  const s = shared(store);
  const h = startSession(s);
  await h.client.response();
  h.client.send(`USER ${account.address}\r\nPASS ${PASSWORD}\r\nSTAT\r\nRETR 2\r\nLIST 1\r\nUIDL\r\nDELE 1\r\nBOGUS\r\nQUIT\r\n`);
  assert.equal((await h.client.response()).status, '+OK Send PASS');
  assert.match((await h.client.response()).status, /^\+OK Logged in, 2 messages/);
  assert.match((await h.client.response()).status, /^\+OK 2 \d+$/);
  const retr = await h.client.response(true);
  assert.equal(retr.status, `+OK ${messages[1]!.length} octets`);
  assert.equal((await h.client.response()).status, `+OK 1 ${messages[0]!.length}`);
  assert.match((await h.client.response(true)).status, /^\+OK Unique-ID/);
  assert.equal((await h.client.response()).status, '+OK Message 1 deleted');
  assert.equal((await h.client.response()).status, '-ERR Unknown command');
  assert.equal((await h.client.response()).status, '+OK Logging out, 1 message deleted, 1 left');
  await h.client.closed();
});

test('idle timeout: -ERR after ten minutes without a command, and no UPDATE', async () => {
  const { account } = await mailbox(1);
  const clock = new ManualClock();
  const s = shared(store, clock);
  const h = startSession(s);
  assert.match(await login(h, account), /^\+OK/);
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  clock.advance(599_000);
  assert.equal(await h.client.cmd('NOOP'), '+OK');
  clock.advance(599_000);
  assert.equal(h.client.ended, false);
  clock.advance(1_000);
  assert.equal((await h.client.response()).status, '-ERR Disconnected for inactivity');
  await h.client.closed();
  await h.closed;
  assert.equal((await store.messages.list(await inboxOf(store, account))).length, 1);
  assert.equal(h.logs.find((l) => l['msg'] === 'logout')?.['status'], 'timeout');
});

test('drain: an idle session is closed with [SYS/TEMP] and nothing is deleted', async () => {
  const { account } = await mailbox(1);
  const s = shared(store);
  const h = startSession(s);
  assert.match(await login(h, account), /^\+OK/);
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  h.session.drain();
  assert.equal((await h.client.response()).status, '-ERR [SYS/TEMP] Server shutting down');
  await h.client.closed();
  await h.closed;
  assert.equal((await store.messages.list(await inboxOf(store, account))).length, 1);
});

test('a message expunged by another session meanwhile: RETR says so, QUIT still removes the rest', async () => {
  const { account, uids } = await mailbox(3);
  const s = shared(store);
  const h = startSession(s);
  assert.match(await login(h, account), /^\+OK/);
  const inbox = await inboxOf(store, account);
  await store.messages.setFlags(inbox, [{ from: uids[0]!, to: uids[0]! }], 'add', ['\\Deleted']);
  await store.messages.expunge(inbox, [{ from: uids[0]!, to: uids[0]! }]);
  assert.equal(await h.client.cmd('RETR 1'), '-ERR Message was removed by another session');
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  assert.equal(await h.client.cmd('DELE 2'), '+OK Message 2 deleted');
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 1 message deleted, 1 left');
  assert.deepEqual((await store.messages.list(inbox)).map((m) => m.uid), [uids[2]]);
});

test('messages flagged \\Deleted by IMAP but not marked here survive QUIT', async () => {
  const { account, uids } = await mailbox(2);
  const inbox = await inboxOf(store, account);
  await store.messages.setFlags(inbox, [{ from: uids[1]!, to: uids[1]! }], 'add', ['\\Deleted']);
  const h = startSession(shared(store));
  assert.match(await login(h, account), /^\+OK Logged in, 2 messages/);
  assert.equal(await h.client.cmd('DELE 1'), '+OK Message 1 deleted');
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 1 message deleted, 1 left');
  assert.deepEqual((await store.messages.list(inbox)).map((m) => m.uid), [uids[1]]);
});

test('QUIT in AUTHORIZATION closes without touching anything; a wrong password keeps the state', async () => {
  const { account } = await mailbox(1);
  const h = startSession(shared(store));
  await h.client.response();
  assert.equal(await h.client.cmd('PASS nothing'), '-ERR Send USER first');
  assert.equal(await h.client.cmd('USER nobody@example.test'), '+OK Send PASS');
  assert.equal(await h.client.cmd('PASS whatever'), '-ERR [AUTH] Authentication failed');
  assert.equal(await h.client.cmd(`PASS ${PASSWORD}`), '-ERR Send USER first');
  assert.equal(await h.client.cmd(`USER ${account.address}`), '+OK Send PASS');
  assert.equal(await h.client.cmd('QUIT'), '+OK Bye');
  await h.client.closed();
  await h.closed;
  assert.equal(h.logs.find((l) => l['msg'] === 'disconnect')?.['status'], 'quit');
});

test('read-ahead: RETR in order, skipping a DELE, going back and jumping, always returns the right bytes', async () => {
  const { account, messages } = await mailbox(9);
  const h = startSession(shared(store));
  assert.match(await login(h, account), /^\+OK/);
  assert.equal(await h.client.cmd('DELE 3'), '+OK Message 3 deleted');
  for (const n of [1, 2, 4, 5, 2, 9, 6, 7, 8, 1]) {
    const r = await h.client.multi(`RETR ${n}`);
    assert.ok(r.body.equals(messages[n - 1]!), `RETR ${n} returns message ${n}`);
  }
  assert.equal(await h.client.cmd('RETR 3'), '-ERR Message is deleted');
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 1 message deleted, 8 left');
});

test('read-ahead: a message expunged by IMAP before its read-ahead says so, like a direct read', async () => {
  const { account, uids, messages } = await mailbox(4);
  const inbox = await inboxOf(store, account);
  const h = startSession(shared(store));
  assert.match(await login(h, account), /^\+OK/);
  await store.messages.setFlags(inbox, [{ from: uids[2]!, to: uids[2]! }], 'add', ['\\Deleted']);
  await store.messages.expunge(inbox, [{ from: uids[2]!, to: uids[2]! }]);
  assert.ok((await h.client.multi('RETR 2')).body.equals(messages[1]!));
  assert.equal(await h.client.cmd('RETR 3'), '-ERR Message was removed by another session');
  assert.ok((await h.client.multi('RETR 4')).body.equals(messages[3]!));
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 0 messages deleted, 4 left');
});

test('pipelined RETRs across read-ahead batches: in order, right bytes, with DELE, a large message and one expunged meanwhile', async () => {
  const account = await addAccount(store, `user${++n}@example.test`);
  // sizes that split the batches unevenly: mostly small, some 20 KB, one larger than a whole batch
  const messages = Array.from({ length: 60 }, (_, i) => (i === 30 ? sampleMessage(i + 1, 12_000) : sampleMessage(i + 1, i % 7 === 0 ? 2000 : i)));
  const uids = await deliver(store, account, messages);
  const inbox = await inboxOf(store, account);
  const h = startSession(shared(store));
  assert.match(await login(h, account), /^\+OK/);
  // the first RETR starts the read-ahead
  assert.ok((await h.client.multi('RETR 1')).body.equals(messages[0]!));
  // message 45 goes away after the read-ahead may have started: a read-ahead miss is read again alone
  await store.messages.setFlags(inbox, [{ from: uids[44]!, to: uids[44]! }], 'add', ['\\Deleted']);
  await store.messages.expunge(inbox, [{ from: uids[44]!, to: uids[44]! }]);
  const script: string[] = ['DELE 10'];
  for (let k = 2; k <= 60; k++) script.push(`RETR ${k}`, ...(k % 13 === 0 ? ['NOOP', 'STAT'] : []));
  h.client.send(script.map((l) => `${l}\r\n`).join(''));
  assert.equal((await h.client.response()).status, '+OK Message 10 deleted');
  for (let k = 2; k <= 60; k++) {
    if (k === 10) {
      assert.equal((await h.client.response()).status, '-ERR Message is deleted');
    } else if (k === 45) {
      assert.equal((await h.client.response()).status, '-ERR Message was removed by another session');
    } else {
      const r = await h.client.response(true);
      assert.equal(r.status, `+OK ${messages[k - 1]!.length} octets`, `RETR ${k}`);
      assert.ok(unstuff(r.raw!).equals(messages[k - 1]!), `RETR ${k} returns message ${k}`);
    }
    if (k % 13 === 0) {
      assert.equal((await h.client.response()).status, '+OK');
      assert.match((await h.client.response()).status, /^\+OK 59 \d+$/);
    }
  }
  assert.equal(await h.client.cmd('QUIT'), '+OK Logging out, 1 message deleted, 59 left');
});
