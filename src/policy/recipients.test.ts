import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { provisionAccount } from '../directory/accounts.js';
import { openTestStore, ManualClock, type TestStore } from '../queue/testing.js';
import type { ClientInfo, RecipientVerdict } from '../smtp/services.js';
import type { Store } from '../store/index.js';
import { LocalDomains } from './domains.js';
import { cachedLocalLookup } from './lookup.js';
import { expandRecipients } from '../queue/expand.js';
import { createRecipientPolicy, type RecipientPolicy } from './recipients.js';

let t: TestStore;
let policy: RecipientPolicy;
const clock = new ManualClock();

const untrusted: ClientInfo = { address: '203.0.113.9', port: 40000, helo: 'x', tls: false, authUser: null, trusted: false, submission: false };
const trusted: ClientInfo = { ...untrusted, address: '127.0.0.1', trusted: true };
const authed: ClientInfo = { ...untrusted, authUser: 'bob@example.test', submission: true };

before(async () => {
  t = await openTestStore();
  const { store } = t;
  await store.directory.addDomain('example.test');
  await store.directory.addDomain('dir-only.test');
  await store.directory.addDomain('catch.test');
  await provisionAccount(store, 'bob@example.test', null);
  await provisionAccount(store, 'full@example.test', null, 10);
  await provisionAccount(store, 'carol@dir-only.test', null);
  await provisionAccount(store, 'dave@catch.test', null);
  await store.directory.addAlias({ source: 'postmaster@example.test', targets: ['bob@example.test'] });
  await store.directory.addAlias({ source: 'list@example.test', targets: ['bob@example.test', 'x@remote.test'] });
  await store.directory.addAlias({ source: '@catch.test', targets: ['dave@catch.test'] });
  // fill the small mailbox past its quota with a message that got in before the quota was lowered
  const full = await store.directory.getAccount('full@example.test');
  const inbox = full && (await store.mailboxes.get(full.id, 'INBOX'));
  assert.ok(inbox);
  await store.directory.setQuota('full@example.test', null);
  await store.messages.append(inbox.id, { content: Buffer.from('Subject: x\r\n\r\nhello world\r\n') }, clock.now());
  await store.directory.setQuota('full@example.test', 10);
  const domains = new LocalDomains({ store, domains: ['example.test'], relayDomains: ['relay.test'], cacheMs: 0, clock });
  policy = createRecipientPolicy({ store, domains, delimiters: '+' });
});

after(() => t.cleanup());

const check = (client: ClientInfo, recipient: string): Promise<RecipientVerdict> => policy({ client, sender: 'a@b.test', recipient });

function reply(v: RecipientVerdict): string {
  return v.action === 'accept' ? `accept ${v.kind}` : `${v.code} ${v.enhanced} ${v.text}`;
}

const unknown = (a: string) => `550 5.1.1 <${a}>: Recipient address rejected: User unknown in virtual mailbox table`;
const denied = (a: string) => `554 5.7.1 <${a}>: Relay access denied`;

describe('local domains', () => {
  test('accounts, aliases, subaddresses, directory-only domains, case', async () => {
    for (const client of [untrusted, trusted]) {
      assert.equal(reply(await check(client, 'bob@example.test')), 'accept local');
      assert.equal(reply(await check(client, 'BOB@Example.Test')), 'accept local');
      assert.equal(reply(await check(client, 'postmaster@example.test')), 'accept local');
      assert.equal(reply(await check(client, 'list@example.test')), 'accept local');
      assert.equal(reply(await check(client, 'bob+news@example.test')), 'accept local');
      assert.equal(reply(await check(client, 'list+x@example.test')), 'accept local');
      assert.equal(reply(await check(client, 'carol@dir-only.test')), 'accept local');
    }
  });

  test('unknown users get 550 5.1.1, from trusted clients too', async () => {
    for (const client of [untrusted, trusted, authed]) {
      assert.equal(reply(await check(client, 'nobody@example.test')), unknown('nobody@example.test'));
      assert.equal(reply(await check(client, 'nobody+bob@example.test')), unknown('nobody+bob@example.test'));
      assert.equal(reply(await check(client, '+bob@example.test')), unknown('+bob@example.test'));
    }
  });

  test('catch-all accepts any plain local part of its domain only', async () => {
    assert.equal(reply(await check(untrusted, 'anything@catch.test')), 'accept local');
    assert.equal(reply(await check(untrusted, 'nobody@example.test')), unknown('nobody@example.test'));
  });

  test('a known full mailbox is 452 4.2.2 at RCPT', async () => {
    assert.equal(reply(await check(untrusted, 'full@example.test')), '452 4.2.2 <full@example.test>: Mailbox full');
    assert.equal(reply(await check(untrusted, 'full+x@example.test')), '452 4.2.2 <full+x@example.test>: Mailbox full');
  });

  test('a domain added to the directory is local (cacheMs 0: at once)', async () => {
    assert.equal(reply(await check(untrusted, 'u@late.test')), denied('u@late.test'));
    await t.store.directory.addDomain('late.test');
    assert.equal(reply(await check(untrusted, 'u@late.test')), unknown('u@late.test'));
  });
});

describe('relay', () => {
  test('relay_domains are accepted from anyone', async () => {
    assert.equal(reply(await check(untrusted, 'anyone@relay.test')), 'accept relay');
    assert.equal(reply(await check(untrusted, 'anyone@RELAY.test')), 'accept relay');
  });

  test('other domains only from mynetworks or after AUTH', async () => {
    assert.equal(reply(await check(untrusted, 'x@remote.test')), denied('x@remote.test'));
    assert.equal(reply(await check(trusted, 'x@remote.test')), 'accept relay');
    assert.equal(reply(await check(authed, 'x@remote.test')), 'accept relay');
  });

  test('unqualified addresses are refused', async () => {
    assert.equal(reply(await check(trusted, 'postmaster')), '504 5.5.2 <postmaster>: Recipient address rejected: need fully-qualified address');
    assert.equal(reply(await check(untrusted, '@example.test')).slice(0, 9), '504 5.5.2');
  });
});

describe('no loopholes', () => {
  // In a local domain, routing syntax is just an unknown user: never rerouted, not even from mynetworks.
  const localTricks = [
    'x%remote.test@example.test',
    'remote.test!x@example.test',
    '"x@remote.test"@example.test',
    '"x%remote.test"@example.test',
    '"remote.test!x"@example.test',
    '@relay.example:x@example.test',
    'bob%example.test@example.test',
    '"bob"@example.test',
  ];
  for (const rcpt of localTricks) {
    test(`local domain: ${rcpt} is an unknown user`, async () => {
      for (const client of [untrusted, trusted]) assert.equal(reply(await check(client, rcpt)), unknown(rcpt));
    });
  }

  test('routing syntax stays unknown even with a catch-all alias in the domain', async () => {
    for (const rcpt of ['x%remote.test@catch.test', 'remote.test!x@catch.test', '"x@remote.test"@catch.test']) {
      assert.equal(reply(await check(untrusted, rcpt)), unknown(rcpt));
    }
  });

  // Not one of our domains: needs relay permission like any foreign destination.
  const foreign = [
    'bob@example.test.',
    'postmaster@example.test.',
    'bob@[127.0.0.1]',
    'bob@[IPv6:::1]',
    'x%example.test@remote.test',
    'example.test!x@remote.test',
    '"bob@example.test"@remote.test',
    'anyone@relay.test.',
    'bob@example.test..',
  ];
  for (const rcpt of foreign) {
    test(`foreign destination: ${rcpt} is denied untrusted, relayed trusted`, async () => {
      assert.equal(reply(await check(untrusted, rcpt)), denied(rcpt));
      assert.equal(reply(await check(trusted, rcpt)), 'accept relay');
    });
  }
});

/** The test store with every account and alias lookup counted. */
function countingLookups(store: Store): { counting: Store; counted: () => number } {
  let lookups = 0;
  const counting: Store = {
    ...store,
    directory: {
      ...store.directory,
      getAccount: (a: string) => (lookups++, store.directory.getAccount(a)),
      getAlias: (a: string) => (lookups++, store.directory.getAlias(a)),
    },
  };
  return { counting, counted: () => lookups };
}

describe('lookup cache', () => {
  test('a found recipient is reused for lookupCacheMs; an unknown one is asked again at once', async () => {
    const { store } = t;
    const cacheClock = new ManualClock();
    const domains = new LocalDomains({ store, domains: ['example.test'], relayDomains: [], cacheMs: 0, clock: cacheClock });
    const { counting, counted } = countingLookups(store);
    const cached = createRecipientPolicy({ store: counting, domains, delimiters: '+', lookupCacheMs: 1000, clock: cacheClock });
    const ask = async (recipient: string) => reply(await cached({ client: untrusted, sender: 'a@b.test', recipient }));

    assert.equal(await ask('bob@example.test'), 'accept local');
    const first = counted();
    assert.ok(first > 0);
    assert.equal(await ask('bob@example.test'), 'accept local');
    assert.equal(counted(), first, 'second RCPT within the second: no store lookup');
    cacheClock.advance(1001);
    assert.equal(await ask('bob@example.test'), 'accept local');
    assert.ok(counted() > first, 'expired: looked up again');

    // a miss is never kept: the account created right after is accepted at once
    assert.equal(await ask('newcomer@example.test'), unknown('newcomer@example.test'));
    await provisionAccount(store, 'newcomer@example.test', null);
    assert.equal(await ask('newcomer@example.test'), 'accept local');
    await store.directory.removeAccount('newcomer@example.test');
  });

  test('the RCPT check and the commit expansion of the same recipient share one lookup', async () => {
    const { store } = t;
    const cacheClock = new ManualClock();
    const domains = new LocalDomains({ store, domains: ['example.test'], relayDomains: [], cacheMs: 0, clock: cacheClock });
    const { counting, counted } = countingLookups(store);
    const lookup = cachedLocalLookup(counting, '+', 1000, cacheClock);
    const policy = createRecipientPolicy({ store: counting, domains, delimiters: '+', lookup });
    assert.equal(reply(await policy({ client: untrusted, sender: 'a@b.test', recipient: 'bob@example.test' })), 'accept local');
    const atRcpt = counted();
    const expansion = await expandRecipients([{ address: 'bob@example.test' }], { store: counting, domains, delimiters: '+', recursionLimit: 20, expansionLimit: 1000, lookup });
    assert.deepEqual(expansion.recipients.map((r) => r.address), ['bob@example.test']);
    assert.equal(counted(), atRcpt, 'the expansion asked nothing of the store');
  });

  test('lookupCacheMs 0 asks the store for every RCPT', async () => {
    const { store } = t;
    const domains = new LocalDomains({ store, domains: ['example.test'], relayDomains: [], cacheMs: 0, clock });
    let lookups = 0;
    const counting = {
      ...store,
      directory: { ...store.directory, getAccount: (a: string) => (lookups++, store.directory.getAccount(a)), getAlias: (a: string) => store.directory.getAlias(a) },
    };
    const uncached = createRecipientPolicy({ store: counting, domains, delimiters: '+', lookupCacheMs: 0 });
    await uncached({ client: untrusted, sender: 'a@b.test', recipient: 'bob@example.test' });
    await uncached({ client: untrusted, sender: 'a@b.test', recipient: 'bob@example.test' });
    assert.equal(lookups, 2);
  });
});
