import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inlineMap } from './maps.js';
import { createRouter, describeTransport, parseTransport, relayTransportProblem, transportKeys, TransportSyntaxError, type RouterSettings } from './transport.js';

describe('parseTransport', () => {
  test('every form', () => {
    assert.deepEqual(parseTransport('local'), { kind: 'local' });
    assert.deepEqual(parseTransport('lmtp:[10.0.0.5]:24'), { kind: 'lmtp', via: { type: 'inet', host: '10.0.0.5', port: 24 } });
    assert.deepEqual(parseTransport('lmtp:Mailstore.example:2424'), { kind: 'lmtp', via: { type: 'inet', host: 'mailstore.example', port: 2424 } });
    assert.deepEqual(parseTransport('lmtp:inet:[::1]:24'), { kind: 'lmtp', via: { type: 'inet', host: '::1', port: 24 } });
    assert.deepEqual(parseTransport('lmtp:unix:/run/cartero/lmtp'), { kind: 'lmtp', via: { type: 'unix', path: '/run/cartero/lmtp' } });
    assert.deepEqual(parseTransport('smtp:mx.example.org'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'mx.example.org', port: null, mx: true } });
    assert.deepEqual(parseTransport('smtp:[mx.example.org]'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'mx.example.org', port: null, mx: false } });
    assert.deepEqual(parseTransport('smtp:[127.0.0.3]:2526'), { kind: 'smtp', name: 'smtp', nexthop: { host: '127.0.0.3', port: 2526, mx: false } });
    assert.deepEqual(parseTransport('smtp:[ipv6:2001:db8::1]:25'), { kind: 'smtp', name: 'smtp', nexthop: { host: '2001:db8::1', port: 25, mx: false } });
    assert.deepEqual(parseTransport('smtp:host.example:2525'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'host.example', port: 2525, mx: true } });
    assert.deepEqual(parseTransport('relay:[gw.example]'), { kind: 'smtp', name: 'relay', nexthop: { host: 'gw.example', port: null, mx: false } });
    assert.deepEqual(parseTransport('smtp'), { kind: 'smtp', name: 'smtp', nexthop: null });
    assert.deepEqual(parseTransport('relay:'), { kind: 'smtp', name: 'relay', nexthop: null });
    assert.deepEqual(parseTransport('error:5.1.1 User unknown here'), { kind: 'error', permanent: true, status: '5.1.1', text: 'User unknown here' });
    assert.deepEqual(parseTransport('error:4.3.2 try later'), { kind: 'error', permanent: false, status: '4.3.2', text: 'try later' });
    assert.deepEqual(parseTransport('error:mailbox moved'), { kind: 'error', permanent: true, status: '5.0.0', text: 'mailbox moved' });
    assert.deepEqual(parseTransport('discard'), { kind: 'discard', text: 'discarded by the transport table' });
    assert.deepEqual(parseTransport('discard:spam trap'), { kind: 'discard', text: 'spam trap' });
    assert.deepEqual(parseTransport('hold'), { kind: 'hold', text: 'held by the transport table' });
    assert.deepEqual(parseTransport('  SMTP:[a.example]  '), { kind: 'smtp', name: 'smtp', nexthop: { host: 'a.example', port: null, mx: false } });
  });

  test('malformed values', () => {
    const bad = [
      'uucp:host',
      'local:somewhere',
      'lmtp:unix:relative/path',
      'lmtp:unix:',
      'smtp:[host',
      'smtp:[]',
      'smtp:[bad host]',
      'smtp:host:0',
      'smtp:host:65536',
      'smtp:host:http',
      'smtp:[a.example]:',
      'smtp:-bad-.example',
      'smtp:a..b',
      'smtp:host\r\nRCPT',
      'error:2.0.0 fine',
      'error:5.1 missing part',
      '',
      ':[bad host]',
      ':host:0',
      '::',
    ];
    for (const v of bad) assert.throws(() => parseTransport(v), TransportSyntaxError, v);
  });

  test('describeTransport round-trips the usual forms', () => {
    for (const v of ['local', 'lmtp:[10.0.0.5]:24', 'lmtp:unix:/run/l', 'smtp:[127.0.0.3]:2526', 'smtp:mx.example', 'relay', 'discard:x', 'hold:y']) {
      assert.equal(describeTransport(parseTransport(v)), v);
    }
  });
});

describe('transportKeys', () => {
  test('address, address without extension, domain, parent domains, *', () => {
    assert.deepEqual(transportKeys('User+x@Mail.Sub.Example.org', '+'), [
      'user+x@mail.sub.example.org',
      'user@mail.sub.example.org',
      'mail.sub.example.org',
      '.sub.example.org',
      '.example.org',
      '.org',
      '*',
    ]);
    assert.deepEqual(transportKeys('a@[192.0.2.1]', '+'), ['a@[192.0.2.1]', '[192.0.2.1]', '*']);
  });
});

describe('createRouter', () => {
  const domains = {
    isLocal: async (d: string) => d === 'example.test',
    isRelay: (d: string) => d === 'relay.test' || d === 'backup.test',
  };
  const table = inlineMap('transport_maps', {
    'vip@example.test': 'smtp:[vip-host.example]:2526',
    'lmtp.test': 'lmtp:[127.0.0.9]:24',
    '.corp.test': 'relay:[gw.corp.test]',
    'corp.test': 'local',
    'backup.test': 'smtp:[primary.backup.test]',
    'dead.test': 'error:5.1.2 this domain is gone',
    'mx-only.test': 'smtp',
  });
  const base: RouterSettings = { transportMaps: table, delimiters: '+' };

  test('transport_maps by address, address without extension, domain, parent domain', async () => {
    const route = createRouter(base, { domains });
    assert.deepEqual(await route('vip+tag@example.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'vip-host.example', port: 2526, mx: false } });
    assert.deepEqual(await route('x@LMTP.test'), { kind: 'lmtp', via: { type: 'inet', host: '127.0.0.9', port: 24 } });
    assert.deepEqual(await route('x@a.b.corp.test'), { kind: 'smtp', name: 'relay', nexthop: { host: 'gw.corp.test', port: null, mx: false } });
    assert.deepEqual(await route('x@corp.test'), { kind: 'local' }, '"corp.test" matches the domain only, ".corp.test" its subdomains');
    assert.deepEqual(await route('x@backup.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'primary.backup.test', port: null, mx: false } });
    assert.deepEqual(await route('x@dead.test'), { kind: 'error', permanent: true, status: '5.1.2', text: 'this domain is gone' });
    assert.deepEqual(await route('x@mx-only.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'mx-only.test', port: null, mx: true } });
  });

  test('then local domains, relay_domains (relay_transport), relayhost, MX', async () => {
    const plain = createRouter(base, { domains });
    assert.deepEqual(await plain('bob@example.test'), { kind: 'local' });
    assert.deepEqual(await plain('x@relay.test'), { kind: 'smtp', name: 'relay', nexthop: { host: 'relay.test', port: null, mx: true } });
    assert.deepEqual(await plain('x@elsewhere.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'elsewhere.test', port: null, mx: true } });
    assert.deepEqual(await plain('x@[192.0.2.7]'), { kind: 'smtp', name: 'smtp', nexthop: { host: '192.0.2.7', port: null, mx: false } });

    const smart = createRouter(
      {
        ...base,
        relayTransport: 'lmtp:unix:/run/lmtp',
        relayhost: { host: 'smarthost.example', port: 587, auth: { username: 'u', password: 'p' }, tls: 'encrypt' },
      },
      { domains },
    );
    assert.deepEqual(await smart('x@relay.test'), { kind: 'lmtp', via: { type: 'unix', path: '/run/lmtp' } });
    assert.deepEqual(await smart('x@elsewhere.test'), {
      kind: 'smtp',
      name: 'smtp',
      nexthop: { host: 'smarthost.example', port: 587, mx: false },
      auth: { username: 'u', password: 'p' },
      tls: 'encrypt',
    });
    assert.deepEqual(await smart('bob@example.test'), { kind: 'local' });
    assert.deepEqual(await smart('vip@example.test').then((t) => t.kind), 'smtp', 'the table still comes first');

    const mxRelayhost = createRouter({ ...base, relayhost: { host: 'smart.example', mx_lookup: true } }, { domains });
    assert.deepEqual(await mxRelayhost('x@elsewhere.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'smart.example', port: null, mx: true }, tls: 'may' });
    const literal = createRouter({ ...base, relayhost: { host: '[192.0.2.9]', port: 2525, mx_lookup: true } }, { domains });
    assert.deepEqual(await literal('x@elsewhere.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: '192.0.2.9', port: 2525, mx: false }, tls: 'may' });
  });

  test('the * entry catches everything not matched before (Postfix transport(5))', async () => {
    const route = createRouter({ transportMaps: inlineMap('t', { '*': 'smtp:[outbound.example]', 'example.test': 'local' }), delimiters: '+' }, { domains });
    assert.equal(describeTransport(await route('x@anything.test')), 'smtp:[outbound.example]');
    assert.equal(describeTransport(await route('bob@example.test')), 'local');
  });

  test('bad address and a table value that does not parse', async () => {
    const route = createRouter({ transportMaps: inlineMap('t', { 'broken.test': 'nonsense:x' }), delimiters: '+' }, { domains });
    assert.deepEqual(await route('no-domain'), { kind: 'error', permanent: true, status: '5.1.3', text: 'bad address syntax: no-domain' });
    await assert.rejects(route('x@broken.test'), TransportSyntaxError);
    assert.throws(() => createRouter({ ...base, relayTransport: 'bogus' }, { domains }), TransportSyntaxError);
  });
});

describe('transport(5) null fields', () => {
  const domains = {
    isLocal: async (d: string) => d === 'example.test',
    isRelay: (d: string) => d === 'relay.test',
  };

  test('parsing: ":" and ":nexthop" keep the transport, "smtp:" / "lmtp" / "lmtp:" go to the recipient domain', () => {
    assert.deepEqual(parseTransport(':'), { kind: 'default', nexthop: null });
    assert.deepEqual(parseTransport(' : '), { kind: 'default', nexthop: null });
    assert.deepEqual(parseTransport(':[gateway.example.com]'), { kind: 'default', nexthop: { host: 'gateway.example.com', port: null, mx: false } });
    assert.deepEqual(parseTransport(':gw.example:2525'), { kind: 'default', nexthop: { host: 'gw.example', port: 2525, mx: true } });
    assert.deepEqual(parseTransport('smtp:'), { kind: 'smtp', name: 'smtp', nexthop: null });
    assert.deepEqual(parseTransport('lmtp:'), { kind: 'lmtp', via: null });
    assert.deepEqual(parseTransport('LMTP'), { kind: 'lmtp', via: null });
    for (const v of [':', ':[gw.example]', ':gw.example:2525', 'lmtp']) assert.equal(describeTransport(parseTransport(v)), v);
    assert.equal(relayTransportProblem('relay'), null);
    assert.match(relayTransportProblem(':[gw.example]') ?? '', /relay_transport needs a transport name/);
    assert.throws(() => createRouter({ transportMaps: null, relayTransport: ':', delimiters: '+' }, { domains }), TransportSyntaxError);
  });

  test('routing: ":" is "as if the table had no entry" (and stops the search before *)', async () => {
    const route = createRouter(
      {
        transportMaps: inlineMap('t', { 'example.test': ':', 'relay.test': ':', 'direct.test': ':', '*': 'smtp:[outbound.example]' }),
        relayTransport: 'relay:[relay-gw.example]',
        relayhost: { host: '[smart.example]' },
        delimiters: '+',
      },
      { domains },
    );
    assert.deepEqual(await route('bob@example.test'), { kind: 'local' });
    assert.equal(describeTransport(await route('x@relay.test')), 'relay:[relay-gw.example]');
    assert.equal(describeTransport(await route('x@direct.test')), 'smtp:[smart.example]', 'the relayhost, not the * entry');
    assert.equal(describeTransport(await route('x@other.test')), 'smtp:[outbound.example]');
  });

  test('routing: ":[host]" keeps the address class transport with the table nexthop', async () => {
    const table = inlineMap('t', { 'example.test': ':[ignored.example]', 'relay.test': ':[gw.relay.test]:2526', '.corp.test': ':[gw.corp.test]' });
    const route = createRouter({ transportMaps: table, relayhost: { host: 'smart.example', auth: { username: 'u', password: 'p' } }, delimiters: '+' }, { domains });
    assert.deepEqual(await route('bob@example.test'), { kind: 'local' }, 'local delivery has no nexthop');
    assert.deepEqual(await route('x@relay.test'), { kind: 'smtp', name: 'relay', nexthop: { host: 'gw.relay.test', port: 2526, mx: false } });
    // the table nexthop wins over the relayhost, whose credentials are not sent to another host
    assert.deepEqual(await route('x@a.corp.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'gw.corp.test', port: null, mx: false } });
    const lmtpRelay = createRouter({ transportMaps: table, relayTransport: 'lmtp:[store.example]:24', delimiters: '+' }, { domains });
    assert.deepEqual(await lmtpRelay('x@relay.test'), { kind: 'lmtp', via: { type: 'inet', host: 'gw.relay.test', port: 2526 } });
    const unixRelay = createRouter({ transportMaps: table, relayTransport: 'lmtp:unix:/run/lmtp', delimiters: '+' }, { domains });
    assert.deepEqual(await unixRelay('x@relay.test'), { kind: 'lmtp', via: { type: 'unix', path: '/run/lmtp' } });
  });

  test('routing: "smtp:" and "lmtp:" reset the nexthop to the recipient domain', async () => {
    const route = createRouter({ transportMaps: inlineMap('t', { 'a.test': 'smtp:', 'b.test': 'lmtp:', '[192.0.2.5]': 'lmtp' }), relayhost: { host: '[smart.example]' }, delimiters: '+' }, { domains });
    assert.deepEqual(await route('x@A.test'), { kind: 'smtp', name: 'smtp', nexthop: { host: 'a.test', port: null, mx: true } });
    assert.deepEqual(await route('x@b.test'), { kind: 'lmtp', via: { type: 'inet', host: 'b.test', port: null } });
    assert.deepEqual(await route('x@[192.0.2.5]'), { kind: 'lmtp', via: { type: 'inet', host: '192.0.2.5', port: null } });
  });
});
