import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { hashPassword } from '../auth/password.js';
import { startMailServices, type MailServices } from '../cli/serve-mail.js';
import { validateConfig } from '../config/validate.js';
import { provisionAccount } from '../directory/accounts.js';
import type { ClientInfo } from '../smtp/services.js';
import { captureLogger, inboxTexts, message, openTestStore, type TestStore } from './testing.js';

let t: TestStore;
let mail: MailServices;
const { logger, lines } = captureLogger();

before(async () => {
  t = await openTestStore();
  await t.store.directory.addDomain('example.test');
  await provisionAccount(t.store, 'bob@example.test', await hashPassword('secret'));
  // remote.test goes to a closed loopback port (tests never ask a real DNS server or leave loopback)
  const result = validateConfig(
    {
      hostname: 'mx.example.test',
      domains: ['example.test'],
      relay_domains: ['relay.test'],
      delivery: { poll_interval_ms: 60_000 },
      dns: { servers: ['127.0.0.1:9'], timeout: 0.2, retries: 0 },
      transports: { 'remote.test': 'smtp:[127.0.0.1]:9' },
    },
    '/tmp',
  );
  assert.ok('config' in result);
  mail = await startMailServices({ config: result.config, store: t.store, logger });
});

after(async () => {
  await mail.scheduler.stop();
  await t.cleanup();
});

const client = (o: Partial<ClientInfo> = {}): ClientInfo => ({
  address: '203.0.113.5', port: 1234, helo: 'h', tls: false, authUser: null, trusted: false, submission: false, ...o,
});

test('startMailServices wires policy, auth, commit and the scheduler with the config', async () => {
  const { services } = mail;
  assert.deepEqual(await services.checkRecipient({ client: client(), sender: '', recipient: 'bob+x@example.test' }), { action: 'accept', kind: 'local' });
  assert.equal((await services.checkRecipient({ client: client(), sender: '', recipient: 'x@remote.test' })).action, 'reject');
  assert.deepEqual(await services.checkRecipient({ client: client(), sender: '', recipient: 'x@relay.test' }), { action: 'accept', kind: 'relay' });
  assert.equal(await services.authenticate('bob@example.test', 'secret'), 'bob@example.test');
  assert.equal(await services.authenticate('bob@example.test', 'wrong'), null);
  const sub = client({ submission: true, authUser: 'bob@example.test' });
  assert.deepEqual(await services.checkSender({ client: sub, sender: 'bob@example.test' }), { action: 'accept' });
  assert.equal((await services.checkSender({ client: sub, sender: 'eve@example.test' })).action, 'reject');
  assert.ok(mail.trusted('127.0.0.1'));
  assert.ok(!mail.trusted('203.0.113.5'));
});

test('a local recipient is filed by the commit itself; the remote one is queued and tried at once', async () => {
  mail.scheduler.start();
  const started = Date.now();
  const { queueId } = await mail.services.commit(
    { sender: 'alice@sender.test', recipients: [{ address: 'bob@example.test' }, { address: 'far@remote.test' }], meta: { client: '203.0.113.5' } },
    message('pipeline'),
  );
  // in the mailbox when the commit resolves (before the 250), with the scheduler's delivery line
  assert.equal((await inboxTexts(t.store, 'bob@example.test')).length, 1);
  assert.ok(lines.some((l) => l.queue_id === queueId && l.recipient === 'bob@example.test' && l.status === 'sent' && l.relay === 'local'));
  // the remote recipient's next hop refuses connections: deferred with a backoff, entry kept
  // the delivery log line comes before the lease is completed: wait for the stored outcome itself
  const settled = async () => (await t.store.queue.get(queueId))?.recipients.every((r) => r.state !== 'pending' || r.attempts > 0) === true;
  while (!(await settled()) && Date.now() - started < 5000) await sleep(5);
  assert.ok(lines.some((l) => l.queue_id === queueId && l.status === 'deferred'));
  const entry = await t.store.queue.get(queueId);
  assert.deepEqual(entry?.recipients.map((r) => [r.address, r.state]), [['far@remote.test', 'pending']]);
  assert.ok(entry && entry.dueAt >= started + 300_000);
  await mail.scheduler.stop();
});

test('delivery config: Postfix-like defaults, and a maximal_backoff below minimal_backoff is refused', () => {
  const ok = validateConfig(null, '/tmp');
  assert.ok('config' in ok);
  assert.deepEqual(ok.config.delivery, {
    recipient_delimiter: '+',
    minimal_backoff: 300,
    maximal_backoff: 4000,
    maximal_queue_lifetime: 432000,
    concurrency: 100,
    lease_seconds: 60,
    poll_interval_ms: 1000,
    virtual_alias_recursion_limit: 10,
    virtual_alias_expansion_limit: 1000,
    delay_warning_time: 0,
    bounce_size_limit: 50_000,
    bounce_queue_lifetime: 432_000,
    duplicate_suppression_window: 0,
  });
  const bad = validateConfig({ delivery: { minimal_backoff: 600, maximal_backoff: 300, recipient_delimiter: '%', colour: 1, duplicate_suppression_window: -1 } }, '/tmp');
  assert.ok('problems' in bad);
  const keys = bad.problems.map((p) => p.key).sort();
  assert.deepEqual(keys, ['delivery.colour', 'delivery.duplicate_suppression_window', 'delivery.maximal_backoff', 'delivery.recipient_delimiter']);
  const order = validateConfig({ delivery: { minimal_backoff: 600, maximal_backoff: 300 } }, '/tmp');
  assert.ok('problems' in order);
  assert.deepEqual(order.problems, [{ key: 'delivery.maximal_backoff', found: '300', expected: 'a number >= minimal_backoff (600)' }]);
});
