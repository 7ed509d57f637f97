import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { afterEach, test } from 'node:test';
import { endSessions, exchange, startSession } from '../../../../test/smtp/harness.js';
import { duplexPair, MemoryClient } from '../../../../test/smtp/memory.js';

afterEach(endSessions);

/** A stand-in for the TLS handshake: the session continues on a new stream, the old one is abandoned. */
function fakeTls(): { upgradeTls: (s: Duplex) => Promise<Duplex>; secure: Promise<MemoryClient> } {
  let give: (c: MemoryClient) => void = () => undefined;
  const secure = new Promise<MemoryClient>((r) => (give = r));
  return {
    secure,
    upgradeTls: () =>
      new Promise((resolve) =>
        setTimeout(() => {
          const [server, client] = duplexPair();
          give(new MemoryClient(client));
          resolve(server);
        }, 5),
      ),
  };
}

test('STARTTLS is not offered or accepted without a TLS context', async () => {
  const h = startSession();
  await h.client.replies(1);
  await exchange(h, ['EHLO c']);
  assert.doesNotMatch(h.client.received, /STARTTLS/);
  assert.deepEqual(await exchange(h, ['STARTTLS']), ['502 5.5.1 Error: command not implemented']);
});

test('STARTTLS: pipelined plaintext is discarded and the session starts over after the handshake', async () => {
  const tls = fakeTls();
  const h = startSession({ settings: { starttls: true }, upgradeTls: tls.upgradeTls });
  await h.client.replies(1);
  await exchange(h, ['EHLO c']);
  assert.match(h.client.received, /250-STARTTLS\r\n/);
  assert.doesNotMatch(h.client.received, /AUTH/);
  h.client.send('STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\n');
  assert.deepEqual((await h.client.replies(3)).slice(2), ['220 2.0.0 Ready to start TLS']);
  const secure = await tls.secure;
  secure.send('MAIL FROM:<a@remote.test>\r\nEHLO c\r\nRCPT TO:<bob@example.test>\r\n');
  assert.deepEqual(await secure.replies(3), ['503 5.5.1 Error: send HELO/EHLO first', '250 CHUNKING', '503 5.5.1 Error: need MAIL command']);
  assert.doesNotMatch(secure.received, /STARTTLS/);
  assert.match(secure.received, /250-AUTH PLAIN LOGIN\r\n/);
  assert.equal(h.services.senderQueries.length, 0);
  assert.equal((await h.client.replies(0)).length, 3, 'nothing more on the plaintext stream');
  secure.send('MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\nSTARTTLS\r\n');
  assert.deepEqual((await secure.replies(8)).slice(3), ['250 2.1.0 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>', '250 2.0.0 Ok: queued as Q000001', '554 5.5.1 Error: TLS already active']);
  assert.match(h.services.commits[0]!.content.toString(), /with ESMTPS id/);
  assert.equal(h.services.commits[0]!.envelope.meta['tls'], true);
});

test('STARTTLS during a transaction is refused; a failed handshake ends the session', async () => {
  const h = startSession({ settings: { starttls: true }, upgradeTls: () => Promise.reject(new Error('handshake failed')) });
  await h.client.replies(1);
  assert.deepEqual(await exchange(h, ['EHLO c', 'MAIL FROM:<>', 'STARTTLS', 'RSET', 'STARTTLS']), [
    '250 CHUNKING',
    '250 2.1.0 Ok',
    '503 5.5.1 Error: MAIL transaction in progress',
    '250 2.0.0 Ok',
    '220 2.0.0 Ready to start TLS',
  ]);
  await h.client.until(() => h.logs.some((l) => l['msg'] === 'disconnect'), 1000, 'disconnect');
  assert.ok(h.logs.some((l) => l['status'] === 'tls_failed'));
});
