import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { FakeServices } from '../../test/smtp/fake-services.js';
import { rawClient, startTestServer, testCertificate, testConfig } from '../../test/smtp/env.js';
import { captureLogger } from '../../test/smtp/harness.js';
import { createSmtpServer, loadTlsContext, SmtpSetupError, startSmtp } from './server.js';

const SHUTDOWN = '421 4.3.2 mx.example.test Service shutting down, closing transmission channel';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('unreadable TLS files stop creation with a message naming them', () => {
  const config = testConfig({}, { tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } });
  assert.throws(() => loadTlsContext(config), (err: unknown) => err instanceof SmtpSetupError && /smtp\.tls: cannot load \/nonexistent\/cert\.pem/.test(err.message));
  assert.throws(() => createSmtpServer({ config, services: new FakeServices(), logger: captureLogger([]) }), SmtpSetupError);
  assert.equal(loadTlsContext(testConfig()), null);
});

test('startSmtp binds the configured SMTP listeners and serves them', async () => {
  const port = await freePort();
  const config = testConfig({}, { listen: [{ address: '127.0.0.1', port, submission: true }], tls: testCertificate() });
  const services = new FakeServices();
  const smtp = await startSmtp({ config, services, logger: captureLogger([]) });
  try {
    assert.deepEqual(smtp.bound.map((b) => [b.proto, b.port, b.key]), [['smtp', port, 'smtp.listen[0]']]);
    const c = await rawClient(port);
    c.send('EHLO x\r\nMAIL FROM:<a@remote.test>\r\n');
    assert.deepEqual((await c.replies(3)).slice(2), ['530 5.7.0 Authentication required']);
    assert.match(c.received, /250-STARTTLS\r\n/);
  } finally {
    await smtp.close(1000);
  }
});

test('drain: idle sessions get 421 4.3.2 now, a message in DATA is finished and committed first', async () => {
  const env = await startTestServer();
  const idle = await rawClient(env.port('mx'));
  await idle.replies(1);
  const busy = await rawClient(env.port('mx'));
  busy.send('EHLO busy\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: in flight\r\n\r\nfirst\r\n');
  await busy.replies(5);
  const drained = env.server.drain(5000);
  assert.equal((await idle.replies(2))[1], SHUTDOWN);
  await idle.closed();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(busy.ended, false);
  busy.send('second\r\n.\r\nNOOP\r\n');
  assert.deepEqual((await busy.replies(7)).slice(5), ['250 2.0.0 Ok: queued as Q000001', SHUTDOWN]);
  await drained;
  assert.equal(env.server.sessions(), 0);
  assert.match(env.services.commits[0]!.content.toString(), /first\r\nsecond\r\n$/);
  const late = await rawClient(env.port('mx'));
  await late.closed();
  assert.equal(late.received, `${SHUTDOWN}\r\n`);
  await env.close();
});

test('drain gives up after its timeout and cuts what is left', async () => {
  const env = await startTestServer();
  const stuck = await rawClient(env.port('mx'));
  stuck.send('EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\npartial');
  await stuck.replies(5);
  const started = Date.now();
  await env.server.drain(200);
  assert.ok(Date.now() - started < 1000);
  await stuck.closed();
  assert.equal(env.services.commits.length, 0);
  await env.close();
});

test('closing the listeners drains sessions through the shutdown hook', async () => {
  const env = await startTestServer();
  const c = await rawClient(env.port('mx'));
  await c.replies(1);
  await env.listeners.close(2000);
  assert.equal((await c.replies(2))[1], SHUTDOWN);
});

test('reload: new sessions see the new settings, running sessions go on; a bad TLS file keeps the old context', async () => {
  const env = await startTestServer({ tls: true });
  const before = await rawClient(env.port('mx'));
  await before.replies(1);
  env.server.reload(testConfig({ hostname: 'mx2.example.test' }, { tls: testCertificate(), message_size_limit: 5000 }));
  const after = await rawClient(env.port('mx'));
  after.send('EHLO x\r\n');
  await after.replies(2);
  assert.match(after.received, /^220 mx2\.example\.test ESMTP Cartero\r\n250-mx2\.example\.test\r\n250-PIPELINING\r\n250-SIZE 5000\r\n250-STARTTLS\r\n/);
  before.send('EHLO x\r\nQUIT\r\n');
  assert.equal((await before.replies(3))[2], '221 2.0.0 Bye');
  assert.match(before.received, /250-SIZE 10240000\r\n/);
  env.server.reload(testConfig({}, { tls: { cert: '/nonexistent.pem', key: '/nonexistent.pem' } }));
  assert.ok(env.logs.some((l) => /reload failed/.test(String(l['msg']))));
  const third = await rawClient(env.port('mx'));
  third.send('EHLO x\r\n');
  await third.replies(2);
  assert.match(third.received, /^220 mx2\.example\.test .*250-STARTTLS\r\n/s);
  after.socket.destroy();
  third.socket.destroy();
  await env.close();
});
