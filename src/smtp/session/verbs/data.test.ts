import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { addedPrefix } from '../../../../test/smtp/fake-services.js';
import { endSessions, exchange, startSession } from '../../../../test/smtp/harness.js';

afterEach(endSessions);

/** Each hides a second transaction behind a line end that is not <CRLF>.<CRLF>. */
const SMUGGLED = [
  { name: '<LF>.<CRLF>', end: '\n.\r\n', reply: '550 5.5.2 Error: bare <LF> received' },
  { name: '<CR>.<CRLF>', end: '\r.\r\n', reply: '550 5.5.2 Error: bare <CR> received' },
  { name: '<LF>.<LF>', end: '\n.\n', reply: '550 5.5.2 Error: bare <LF> received' },
  { name: '<CRLF>.<LF>', end: '\r\n.\n', reply: '550 5.5.2 Error: bare <LF> received' },
  { name: '<CR><LF>.<CR>', end: '\r\n.\r', reply: '550 5.5.2 Error: bare <CR> received' },
];
const HIDDEN = 'MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\npay now\r\n';

async function inData(trusted: boolean) {
  const h = startSession({ peer: { trusted } });
  await h.client.replies(1);
  await exchange(h, ['EHLO c', 'MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'DATA']);
  return h;
}

for (const v of SMUGGLED) {
  test(`smuggling ${v.name}: outside mynetworks the whole message is refused, nothing is interpreted`, async () => {
    const h = await inData(false);
    h.client.send(`Subject: hi\r\n\r\nbody${v.end}${HIDDEN}.\r\nNOOP\r\n`);
    assert.deepEqual((await h.client.replies(7)).slice(5), [v.reply, '250 2.0.0 Ok']);
    assert.equal(h.services.commits.length, 0);
    assert.equal(h.services.senderQueries.length, 1);
  });

  test(`smuggling ${v.name}: inside mynetworks it is one message, stored as sent`, async () => {
    const h = await inData(true);
    const body = `Subject: hi\r\n\r\nbody${v.end}${HIDDEN}`;
    h.client.send(`${body}.\r\nNOOP\r\n`);
    assert.deepEqual((await h.client.replies(7)).slice(5), ['250 2.0.0 Ok: queued as Q000001', '250 2.0.0 Ok']);
    assert.equal(h.services.commits.length, 1);
    // the one dot at the start of a CRLF line ("<CRLF>.<LF>", "<CRLF>.<CR>") is unstuffed, nothing else changes
    addedPrefix(h.services.commits[0]!.content, Buffer.from(body.replace('\r\n.', '\r\n')));
    assert.equal(h.services.senderQueries.length, 1);
  });
}

test('8-bit and binary-ish content is stored byte for byte', async () => {
  const h = await inData(false);
  const body = Buffer.concat([Buffer.from('Subject: bytes\r\n\r\n'), Buffer.from([0, 1, 0x80, 0xff, 0x2e, 0x0d, 0x0a]), Buffer.from('..leading dot\r\n')]);
  h.client.send(Buffer.concat([body, Buffer.from('.\r\n')]));
  assert.equal((await h.client.replies(6))[5], '250 2.0.0 Ok: queued as Q000001');
  addedPrefix(h.services.commits[0]!.content, Buffer.concat([body.subarray(0, body.length - 15), Buffer.from('.leading dot\r\n')]));
});

test('a message that has passed too many hops is refused as a mail loop (hopcount_limit)', async () => {
  const h = await inData(false);
  // 50 Received: lines already, plus ours = 51 > 50
  const trace = Array.from({ length: 50 }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Thu, 26 Nov 2026 10:00:00 +0000\r\n`).join('');
  h.client.send(`${trace}Subject: loop\r\n\r\nround and round\r\n.\r\n`);
  const [last] = (await h.client.replies(6)).slice(5);
  assert.match(last ?? '', /^554 5\.4\.6 Error: too many hops \(51 Received: lines\)/);
  assert.equal(h.services.commits.length, 0);
  // one hop fewer is fine
  await exchange(h, ['MAIL FROM:<a@remote.test>', 'RCPT TO:<bob@example.test>', 'DATA']);
  h.client.send(`${trace.split('\r\n').slice(1).join('\r\n')}Subject: fine\r\n\r\nonce\r\n.\r\n`);
  assert.match((await h.client.replies(10))[9] ?? '', /^250 2\.0\.0 Ok: queued/);
  assert.equal(h.services.commits.length, 1);
});
