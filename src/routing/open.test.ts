import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { captureLogger } from '../queue/testing.js';
import { isMapError } from './maps.js';
import { buildRouterSettings, openRoutingMaps, reloadOnSignal, storeMapCheck, storeMapUses } from './open.js';
import { routingSettingsSchema } from './settings.js';
import { createRouter, describeTransport } from './transport.js';

describe('routingSettingsSchema', () => {
  test('defaults', () => {
    const s = routingSettingsSchema.parse({});
    assert.deepEqual(s, {
      masquerade_domains: [],
      masquerade_exceptions: [],
      masquerade_classes: ['envelope_sender', 'header_sender', 'header_recipient'],
      local_header_rewrite_clients: ['permit_mynetworks', 'permit_sasl_authenticated'],
      propagate_unmatched_extensions: ['canonical', 'virtual'],
      virtual_alias_domains: [],
      relay_transport: 'relay',
    });
  });

  test('maps: file, inline (strings or lists), list of both', () => {
    const s = routingSettingsSchema.parse({
      virtual_alias_maps: [{ file: 'virtual' }, { 'a@b.test': ['c@d.test', 'e@f.test'] }],
      transport_maps: { 'x.test': 'smtp:[h]:25' },
      canonical_maps: { file: '/etc/cartero/canonical' },
      relayhost: { host: '[192.0.2.1]', port: 587, auth: { username: 'u', password: 'p' }, tls: 'encrypt' },
    });
    assert.deepEqual(s.virtual_alias_maps, [{ file: 'virtual' }, { 'a@b.test': ['c@d.test', 'e@f.test'] }]);
    assert.deepEqual(s.relayhost, { host: '[192.0.2.1]', port: 587, mx_lookup: false, auth: { username: 'u', password: 'p' }, tls: 'encrypt' });
  });

  test('refuses unknown keys, bad values, bad transports', () => {
    const bad: unknown[] = [
      { virtual_alias_map: {} },
      { virtual_alias_maps: { file: '' } },
      { virtual_alias_maps: { 'a@b': '' } },
      { virtual_alias_maps: { file: 'x', extra: 1 } },
      { masquerade_domains: ['ex ample.org'] },
      { masquerade_exceptions: ['root@example.org'] },
      { masquerade_classes: ['envelope_everything'] },
      { relay_transport: 'carrier-pigeon' },
      { relayhost: { host: 'h', tls: 'always' } },
      { relayhost: { host: 'h', port: 0 } },
      { relayhost: { host: 'h', auth: { username: 'u' } } },
      { relayhost: { host: 'h', auth: { username: 'u', password: 'p', password_file: 'f' } } },
      { relayhost: { host: 'h', extra: true } },
    ];
    for (const b of bad) assert.equal(routingSettingsSchema.safeParse(b).success, false, JSON.stringify(b));
  });
});

describe('openRoutingMaps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-open-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('relative files resolve against the base directory; values are checked for their role', async () => {
    writeFileSync(join(dir, 'transport'), 'a.test lmtp:[127.0.0.9]:24\n');
    const settings = routingSettingsSchema.parse({ transport_maps: [{ file: 'transport' }, { 'b.test': 'discard' }] });
    const maps = await openRoutingMaps(settings, { baseDir: dir });
    assert.equal(await maps.maps.transport_maps?.get('a.test'), 'lmtp:[127.0.0.9]:24');
    assert.equal(await maps.maps.transport_maps?.get('b.test'), 'discard');
    assert.equal(maps.maps.virtual_alias_maps, undefined);

    writeFileSync(join(dir, 'bad-transport'), 'a.test local\n\nb.test smtp:[unclosed\n');
    const bad = routingSettingsSchema.parse({ transport_maps: { file: 'bad-transport' } });
    await assert.rejects(openRoutingMaps(bad, { baseDir: dir }), (err: unknown) => isMapError(err) && err.kind === 'value' && err.line === 3);
    const badInline = routingSettingsSchema.parse({ virtual_alias_maps: { 'a@b.test': '%x@y' } });
    await assert.rejects(openRoutingMaps(badInline, { baseDir: dir }), /unknown template "%x"/);
  });

  test('SIGHUP reloads; a broken file is logged with its line and the old table stays', async () => {
    const file = join(dir, 'virtual');
    writeFileSync(file, 'a@x.test one@y.test\na@x.test dup@y.test\n');
    const { logger, lines } = captureLogger();
    const maps = await openRoutingMaps(routingSettingsSchema.parse({ virtual_alias_maps: { file } }), { baseDir: dir, logger });
    assert.ok(lines.some((l) => l.line === 2 && /duplicate entry "a@x\.test" ignored \(first at line 1\)/.test(String(l.msg))));
    const signals = new EventEmitter();
    const stop = reloadOnSignal(maps, logger, signals);
    const settle = () => new Promise((r) => setTimeout(r, 50));

    writeFileSync(file, 'a@x.test two@y.test\n');
    signals.emit('SIGHUP');
    await settle();
    assert.equal(await maps.maps.virtual_alias_maps?.get('a@x.test'), 'two@y.test');
    assert.ok(lines.some((l) => l.event === 'maps_reloaded'));

    writeFileSync(file, 'a@x.test three@y.test\njunk\n');
    signals.emit('SIGHUP');
    await settle();
    assert.equal(await maps.maps.virtual_alias_maps?.get('a@x.test'), 'two@y.test');
    const failure = lines.find((l) => l.event === 'maps_reload_failed');
    assert.equal(failure?.line, 2);
    assert.equal(failure?.file, file);
    assert.match(String(failure?.msg), /previous tables kept: .*virtual, line 2: expected "key whitespace value"/);

    stop();
    assert.equal(signals.listenerCount('SIGHUP'), 0);
  });

  test('router settings: transport_maps before the legacy `transports`, relayhost password file', async () => {
    writeFileSync(join(dir, 'relay-password'), 's3cret\n');
    const settings = routingSettingsSchema.parse({
      transport_maps: { 'a.test': 'smtp:[from-maps]' },
      relayhost: { host: 'smart.example', auth: { username: 'u', password_file: 'relay-password' } },
    });
    const maps = await openRoutingMaps(settings, { baseDir: dir });
    const rs = buildRouterSettings(settings, maps, { delimiters: '+', baseDir: dir, extraTransports: { 'a.test': 'smtp:[legacy]', 'b.test': 'smtp:[legacy]' } });
    const route = createRouter(rs, { domains: { isLocal: async () => false, isRelay: () => false } });
    assert.equal(describeTransport(await route('x@a.test')), 'smtp:[from-maps]');
    assert.equal(describeTransport(await route('x@b.test')), 'smtp:[legacy]');
    assert.deepEqual(await route('x@c.test'), {
      kind: 'smtp',
      name: 'smtp',
      nexthop: { host: 'smart.example', port: null, mx: false },
      auth: { username: 'u', password: 's3cret' },
      tls: 'may',
    });
  });
});

describe('store tables ({ store: NAME })', () => {
  const settings = routingSettingsSchema.parse({
    virtual_alias_maps: [{ store: 'shared' }, { '@a.test': 'x@b.test' }],
    transport_maps: { store: 'Shared' },
    canonical_maps: { store: 'canon' },
  });

  test('the schema takes { store: NAME } and refuses a bad name', () => {
    assert.deepEqual(settings.transport_maps, { store: 'Shared' });
    assert.equal(routingSettingsSchema.safeParse({ transport_maps: { store: 'x', file: 'x' } }).success, true, 'two keys: an inline table');
    assert.equal(routingSettingsSchema.safeParse({ transport_maps: { store: '' } }).success, false);
  });

  test('uses and checks: a table used by two keys must satisfy both', () => {
    assert.deepEqual([...storeMapUses(settings)], [
      ['canon', ['canonical_maps']],
      ['shared', ['virtual_alias_maps', 'transport_maps']],
    ]);
    const check = storeMapCheck(settings, 'SHARED')!;
    assert.match(check('uucp:x', 'k') ?? '', /unknown transport "uucp" .*\(as transport_maps\)/);
    assert.match(check('a@b.test %x', 'k') ?? '', /unknown template/);
    assert.equal(storeMapCheck(settings, 'canon'), null, 'canonical values are addresses: no check');
    assert.equal(storeMapCheck(settings, 'unused'), null);
  });

  test('opening a store table without a store, or with one that fails, is a MapError', async () => {
    await assert.rejects(openRoutingMaps(settings, { baseDir: '/' }), (err: unknown) => isMapError(err) && /^store:canon: canonical_maps: a store table needs the store/.test(err.message));
    const failing = { generations: async () => Promise.reject(new Error('down')), list: async () => [] };
    await assert.rejects(openRoutingMaps(settings, { baseDir: '/', store: failing }), /^MapError: store:canon: cannot read the map from the store \(down\)/);
    // a name the schema does not take as a store name is read as an inline table... whose one key is "store"
    const odd = routingSettingsSchema.parse({ transport_maps: { store: 'bad name' } });
    await assert.rejects(openRoutingMaps(odd, { baseDir: '/', store: failing }), (err: unknown) => isMapError(err) && /^transport_maps: \{ store: "bad name" \}: a store map name is/.test(err.message));
  });

  test('served from memory, refreshed by the watcher until close()', async () => {
    let generation = 1;
    let value = 'smtp:[one.test]';
    const reader = {
      generations: async (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, generation])),
      list: async (map: string) => (map === 'shared' ? [{ key: 'example.test', value, updatedAt: 0, updatedBy: null }] : []),
    };
    const maps = await openRoutingMaps(settings, { baseDir: '/', store: reader, storeMapIntervalMs: 10 });
    assert.equal(await maps.maps.transport_maps!.get('example.test'), 'smtp:[one.test]');
    generation = 2;
    value = 'smtp:[two.test]';
    const deadline = Date.now() + 2000;
    while ((await maps.maps.transport_maps!.get('example.test')) !== 'smtp:[two.test]' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await maps.maps.virtual_alias_maps!.get('example.test'), 'smtp:[two.test]');
    await maps.close();
    generation = 3;
    value = 'smtp:[three.test]';
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await maps.maps.transport_maps!.get('example.test'), 'smtp:[two.test]', 'no polling after close');
    await maps.reload();
    assert.equal(await maps.maps.transport_maps!.get('example.test'), 'smtp:[three.test]', 'reload (SIGHUP) reads the store too');
  });
});
