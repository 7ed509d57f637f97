import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { captureLogger } from '../queue/testing.js';
import { isMapError } from './maps.js';
import { buildRouterSettings, openRoutingMaps, reloadOnSignal } from './open.js';
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
