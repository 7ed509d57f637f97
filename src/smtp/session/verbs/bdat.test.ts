import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { addedPrefix } from '../../../../test/smtp/fake-services.js';
import { endSessions, exchange, startSession } from '../../../../test/smtp/harness.js';

afterEach(endSessions);

const chunk1 = 'Subject: chunked\r\n\r\nline with bare\nLF and\r\n.\r\nno terminator meaning\r\n';
const chunk2 = 'end\r\n';

async function ready(limit = 10_000) {
  const h = startSession({ settings: { messageSizeLimit: limit } });
  await h.client.replies(1);
  await exchange(h, ['EHLO c', 'MAIL FROM:<a@remote.test> BODY=BINARYMIME', 'RCPT TO:<bob@example.test>']);
  return h;
}

test('BDAT chunks are taken byte for byte (no dot handling) and LAST commits', async () => {
  const h = await ready();
  h.client.send(`BDAT ${Buffer.byteLength(chunk1)}\r\n${chunk1}BDAT ${chunk2.length} LAST\r\n${chunk2}NOOP\r\n`);
  const replies = (await h.client.replies(7)).slice(4);
  assert.deepEqual(replies, [`250 2.0.0 Ok: ${Buffer.byteLength(chunk1)} octets received`, '250 2.0.0 Ok: queued as Q000001', '250 2.0.0 Ok']);
  addedPrefix(h.services.commits[0]!.content, Buffer.from(chunk1 + chunk2));
  assert.equal(h.services.commits[0]!.envelope.meta['body'], 'BINARYMIME');
});

test('BDAT octets split over many writes', async () => {
  const h = await ready();
  const wire = `BDAT ${Buffer.byteLength(chunk1)} LAST\r\n${chunk1}`;
  for (let i = 0; i < wire.length; i += 3) h.client.send(wire.slice(i, i + 3));
  assert.equal((await h.client.replies(5))[4], '250 2.0.0 Ok: queued as Q000001');
  addedPrefix(h.services.commits[0]!.content, Buffer.from(chunk1));
});

test('a refused BDAT still consumes its octets: they never become commands', async () => {
  const h = startSession();
  await h.client.replies(1);
  h.client.send('EHLO c\r\nBDAT 35\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<a@b>\r\nNOOP\r\n');
  assert.deepEqual((await h.client.replies(4)).slice(2), ['503 5.5.1 Error: need MAIL command', '250 2.0.0 Ok']);
  assert.equal(h.services.senderQueries.length, 0);
});

test('BDAT past the size limit: 552 5.3.4 after the octets, transaction dropped', async () => {
  const h = await ready(50);
  h.client.send(`BDAT 40\r\n${'x'.repeat(40)}BDAT 40 LAST\r\n${'y'.repeat(40)}RCPT TO:<bob@example.test>\r\n`);
  assert.deepEqual((await h.client.replies(7)).slice(4), ['250 2.0.0 Ok: 40 octets received', '552 5.3.4 Error: message file too big', '503 5.5.1 Error: need MAIL command']);
  assert.equal(h.services.commits.length, 0);
});

test('BDAT 0 LAST, DATA after BDAT, BINARYMIME with DATA', async () => {
  const h = await ready();
  // "abc" + CRLF are 5 octets: BDAT 3 takes "abc", the CRLF is an empty (unknown) command line
  assert.deepEqual(await exchange(h, ['BDAT 3', 'abc', 'BDAT 0 LAST'], 3), ['250 2.0.0 Ok: 3 octets received', '500 5.5.1 Error: command not recognized', '250 2.0.0 Ok: queued as Q000001']);
  assert.equal(h.services.commits.length, 1);
  assert.deepEqual(await exchange(h, ['MAIL FROM:<>', 'RCPT TO:<bob@example.test>', 'BDAT 1', 'x', 'DATA'], 5), [
    '250 2.1.0 Ok',
    '250 2.1.5 Ok',
    '250 2.0.0 Ok: 1 octets received',
    '500 5.5.1 Error: command not recognized',
    '503 5.5.1 Error: bad sequence of commands',
  ]);
  assert.deepEqual(await exchange(h, ['RSET', 'MAIL FROM:<> BODY=BINARYMIME', 'RCPT TO:<bob@example.test>', 'DATA']), ['250 2.0.0 Ok', '250 2.1.0 Ok', '250 2.1.5 Ok', '503 5.5.1 Error: BODY=BINARYMIME requires BDAT']);
});

test('BDAT with an unreadable size closes the connection', async () => {
  const h = await ready();
  h.client.send('BDAT lots\r\nQUIT\r\n');
  assert.equal((await h.client.replies(5))[4], '501 5.5.4 Syntax: BDAT count [LAST]');
  await h.client.closed();
});
