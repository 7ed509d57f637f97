/*
 * ETRN (RFC 1985) on a real SMTP server on loopback with a raw client, against the real embedded queue:
 * who may ask (mynetworks or AUTH, relay domains only), what it does to the queue (entries of the domain
 * due now, the scheduler kicked), every reply code (250, 251, 458, 459, 501, 502, 503) and the
 * malformed arguments. The flushDomain service here is the wiring serve-mail.ts is given (see etrn.ts).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { LocalDomains } from '../../src/policy/domains.js';
import { openTestStore, type TestStore } from '../../src/queue/testing.js';
import type { ClientInfo } from '../../src/smtp/services.js';
import type { Store } from '../../src/store/index.js';
import { rawClient, startTestServer, testConfig, type TestServer } from './env.js';
import { FakeServices } from './fake-services.js';
import { endSessions, exchange, startSession } from './harness.js';
import type { MemoryClient } from './memory.js';

const FUTURE = Date.now() + 3_600_000;

/** FakeServices plus the real ETRN service over a store (what the lead wires in serve-mail.ts). */
class EtrnServices extends FakeServices {
  kicks = 0;
  fail: Error | null = null;
  readonly asked: { domain: string; subdomains: boolean; client: ClientInfo }[] = [];
  constructor(
    private readonly store: Store,
    private readonly domains: LocalDomains,
  ) {
    super();
  }

  async flushDomain(domain: string, options: { subdomains: boolean; client: ClientInfo }): Promise<number | null> {
    this.asked.push({ domain, ...options });
    if (this.fail) throw this.fail;
    if (!this.domains.isRelay(domain)) return null;
    const ids = await this.store.queue.flushDomain(domain, Date.now(), { subdomains: options.subdomains });
    if (ids.length > 0) {
      const who = `smtp ${options.client.address}${options.client.authUser ? ` (${options.client.authUser})` : ''}`;
      await this.store.queue.recordAdmin({ at: Date.now(), actor: who, action: 'etrn', target: `${options.subdomains ? '@' : ''}${domain}`, detail: `${ids.length} entries due now` });
      this.kicks++;
    }
    return ids.length;
  }
}

/** Sends one command and returns its (final) reply line. */
async function say(c: MemoryClient, line: string): Promise<string> {
  const before = (await c.replies(0)).length;
  c.send(`${line}\r\n`);
  const all = await c.replies(before + 1, 5000);
  return all[before] ?? '';
}

async function open(port: number): Promise<MemoryClient & { socket: import('node:net').Socket }> {
  const c = await rawClient(port);
  await c.replies(1);
  return c;
}

describe('ETRN', () => {
  let t: TestStore;
  let services: EtrnServices;
  let trustedServer: TestServer;
  let outsideServer: TestServer;
  let plainServer: TestServer;
  const clients: { socket: import('node:net').Socket }[] = [];
  const ids: Record<'relay' | 'sub' | 'other', string> = { relay: '', sub: '', other: '' };

  before(async () => {
    t = await openTestStore('cartero-etrn-');
    const config = testConfig({ relay_domains: ['relay.test', 'quiet.test'], mynetworks: ['127.0.0.0/8'] });
    const domains = new LocalDomains({ store: t.store, domains: config.domains, relayDomains: config.relay_domains });
    services = new EtrnServices(t.store, domains);
    trustedServer = await startTestServer({ config, services });
    // loopback outside mynetworks: only an authenticated client may ask
    outsideServer = await startTestServer({ config: testConfig({ relay_domains: ['relay.test'] }), services });
    plainServer = await startTestServer({ config });
  });
  after(async () => {
    for (const c of clients) c.socket.destroy();
    await Promise.all([trustedServer.close(), outsideServer.close(), plainServer.close()]);
    await t.cleanup();
  });
  beforeEach(async () => {
    for (const e of await t.store.queue.list()) await t.store.queue.remove(e.id);
    const commit = async (to: string) => (await t.store.queue.commit({ sender: 's@remote.test', recipients: [{ address: to }], content: Buffer.from('Subject: x\r\n\r\nx\r\n'), dueAt: FUTURE }, Date.now())).id;
    ids.relay = await commit('bob@relay.test');
    ids.sub = await commit('carl@mx2.relay.test');
    ids.other = await commit('dora@elsewhere.test');
    services.fail = null;
  });

  const client = async (server: TestServer) => {
    const c = await open(server.port('mx'));
    clients.push(c);
    return c;
  };
  const dueNow = async (id: string) => ((await t.store.queue.get(id))?.dueAt ?? Infinity) <= Date.now();

  test('a client in mynetworks starts a relay domain: 250, its entries due now, the scheduler kicked, ETRN in EHLO', async () => {
    const c = await client(trustedServer);
    assert.match(await say(c, 'ETRN relay.test'), /^503 5\.5\.1 /, 'HELO/EHLO first');
    assert.match(await say(c, 'EHLO client.example'), /^250 /);
    assert.match(c.received, /\r\n250[ -]ETRN\r\n/);
    const kicks = services.kicks;
    assert.equal(await say(c, 'ETRN Relay.TEST'), '250 2.0.0 Queuing for node relay.test started');
    assert.deepEqual([await dueNow(ids.relay), await dueNow(ids.sub), await dueNow(ids.other)], [true, false, false]);
    assert.equal(services.kicks, kicks + 1);
    assert.equal(await say(c, 'ETRN @relay.test'), '250 2.0.0 Queuing for node @relay.test started');
    assert.equal(await dueNow(ids.sub), true, 'the @ form takes subdomains');
    assert.deepEqual((await t.store.queue.adminLog({ target: '@relay.test' })).map((r) => [r.action, r.actor]), [['etrn', 'smtp 127.0.0.1']]);
    assert.equal(await say(c, 'ETRN quiet.test'), '251 2.0.0 OK, no messages waiting for node quiet.test');
    assert.equal(await say(c, 'ETRN example.test'), '459 4.7.1 Node example.test not allowed: not a relay domain of this server');
    assert.equal(await say(c, 'ETRN elsewhere.test'), '459 4.7.1 Node elsewhere.test not allowed: not a relay domain of this server');
    assert.equal(await dueNow(ids.other), false);
    assert.match(await say(c, 'ETRN #myqueue'), /^458 4\.3\.0 Unable to queue messages for node #myqueue/);
    services.fail = new Error('store down');
    assert.equal(await say(c, 'ETRN relay.test'), '458 4.3.0 Unable to queue messages for node relay.test');
    services.fail = null;
    assert.match(await say(c, 'MAIL FROM:<a@client.example>'), /^250 /);
    assert.equal(await say(c, 'ETRN relay.test'), '503 5.5.1 Error: MAIL transaction in progress');
    assert.match(await say(c, 'QUIT'), /^221 /);
  });

  test('malformed arguments are 501 and change nothing', async () => {
    const asked = services.asked.length;
    let c = await client(trustedServer);
    let n = 0;
    for (const bad of ['ETRN', 'ETRN ', 'ETRN [127.0.0.1]', 'ETRN a..b', 'ETRN relay.test extra', 'ETRN -relay.test', 'ETRN relay_test', `ETRN ${'a'.repeat(64)}.test`, `ETRN ${'abc.'.repeat(70)}test`, 'ETRN @', 'ETRN #', 'ETRN @@relay.test', 'ETRN bob@relay.test', 'ETRN rélay.test']) {
      // each refusal counts toward the error limit (10): a fresh session every few
      if (n++ % 5 === 0) {
        c = await client(trustedServer);
        await say(c, 'EHLO client.example');
      }
      assert.match(await say(c, bad), /^501 5\.5\.4 Syntax: ETRN domain$/, bad);
    }
    assert.equal(services.asked.length, asked);
    assert.equal(await dueNow(ids.relay), false);
  });

  test('a client outside mynetworks gets 459 until it authenticates', async () => {
    const c = await client(outsideServer);
    await say(c, 'EHLO client.example');
    assert.equal(await say(c, 'ETRN relay.test'), '459 4.7.1 Node relay.test not allowed: client not authorized');
    assert.equal(await dueNow(ids.relay), false);
    assert.match(await say(c, `AUTH PLAIN ${Buffer.from('\0alice@example.test\0secret').toString('base64')}`), /^235 /);
    assert.equal(await say(c, 'ETRN relay.test'), '250 2.0.0 Queuing for node relay.test started');
    assert.equal(services.asked.at(-1)?.client.authUser, 'alice@example.test');
    assert.equal(await dueNow(ids.relay), true);
  });

  test('without the service ETRN is neither advertised nor accepted (502)', async () => {
    const c = await client(plainServer);
    await say(c, 'EHLO client.example');
    assert.doesNotMatch(c.received, /ETRN/);
    assert.equal(await say(c, 'ETRN relay.test'), '502 5.5.1 Error: command not implemented');
  });

  test('an LMTP session does not know ETRN', async () => {
    const h = startSession({ settings: { lmtp: true }, services: new EtrnServices(t.store, new LocalDomains({ store: t.store, domains: [], relayDomains: ['relay.test'] })), peer: { trusted: true } });
    await h.client.replies(1);
    const [lhlo, r] = await exchange(h, ['LHLO client.example', 'ETRN relay.test']);
    assert.match(lhlo ?? '', /^250 /);
    assert.doesNotMatch(h.client.received, /ETRN\r\n/);
    assert.equal(r, '500 5.5.2 Error: command not recognized');
    assert.equal(await dueNow(ids.relay), false);
    endSessions();
  });
});
