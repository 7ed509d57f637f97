import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inlineMap } from './maps.js';
import { expandTemplate, parseVirtualValue, virtualRecipientVerdict, virtualStep, virtualValueProblem, type VirtualAliasOptions } from './virtual.js';

describe('parseVirtualValue', () => {
  test('address lists separated by commas and/or whitespace', () => {
    assert.deepEqual(parseVirtualValue('a@x, b@y  c@z,d@w'), { kind: 'targets', targets: ['a@x', 'b@y', 'c@z', 'd@w'] });
    assert.deepEqual(parseVirtualValue('%1@mail-server1.example'), { kind: 'targets', targets: ['%1@mail-server1.example'] });
  });
  test('error targets', () => {
    assert.deepEqual(parseVirtualValue('error:5.1.1 No such user here'), { kind: 'error', reason: '5.1.1 No such user here' });
    assert.deepEqual(parseVirtualValue('ERROR:5.7.1'), { kind: 'error', reason: '5.7.1 rejected by the virtual alias table' });
  });
  test('malformed values', () => {
    for (const v of ['error:4.1.1 later', 'error:nouser', 'error:5.1 x', ',, ,', 'a@x %q@y', 'a@x <b@y>', 'a"b@x', `${'a@x '.repeat(1001)}`]) {
      assert.notEqual(virtualValueProblem(v), null, v);
    }
    assert.equal(virtualValueProblem('100%%@x'), null);
  });
  test('templates', () => {
    const parts = { user: 'bob', extension: 'lists', delimited: '+lists', domain: 'depart.example' };
    assert.equal(expandTemplate('%1@mail-server1', parts), 'bob@mail-server1');
    assert.equal(expandTemplate('%u%3@%d.relay', parts), 'bob+lists@depart.example.relay');
    assert.equal(expandTemplate('%2-%1@x', parts), 'lists-bob@x');
    assert.equal(expandTemplate('100%%@x', parts), '100%@x');
  });
});

describe('virtualStep', () => {
  const maps = inlineMap('virtual_alias_maps', {
    'info@example.org': 'alice@example.org, bob@remote.test',
    'bob@example.org': 'robert@other.test',
    '@depart.example': '%1@mail-server1.example',
    '@keep.example': '%1%3@mail-server2.example',
    '@moved.example': '@new.example',
    postmaster: 'root',
    'gone@example.org': 'error:5.1.1 gone, try carol@example.org',
  });
  const o: VirtualAliasOptions = { maps, delimiters: '+', isLocal: (d) => d === 'example.org', myorigin: 'example.org', propagateExtension: true };

  test('exact, catch-all with templates, @otherdomain, unqualified result', async () => {
    assert.deepEqual(await virtualStep('Info@Example.org', o), { kind: 'targets', targets: ['alice@example.org', 'bob@remote.test'], key: 'info@example.org', form: 'address' });
    assert.deepEqual((await virtualStep('Carol+x@depart.example', o))?.kind === 'targets' && (await virtualStep('Carol+x@depart.example', o)), {
      kind: 'targets',
      targets: ['Carol@mail-server1.example'],
      key: '@depart.example',
      form: 'domain',
    });
    assert.deepEqual(await virtualStep('carol+x@keep.example', o).then((s) => s?.kind === 'targets' && s.targets), ['carol+x@mail-server2.example']);
    assert.deepEqual(await virtualStep('dan+y@moved.example', o).then((s) => s?.kind === 'targets' && s.targets), ['dan+y@new.example']);
    assert.deepEqual(await virtualStep('postmaster@example.org', o).then((s) => s?.kind === 'targets' && s.targets), ['root@example.org']);
    assert.equal(await virtualStep('postmaster@remote.test', o), null);
  });

  test('an unmatched extension is propagated to every target (propagate_unmatched_extensions)', async () => {
    assert.deepEqual(await virtualStep('bob+news@example.org', o).then((s) => s?.kind === 'targets' && s.targets), ['robert+news@other.test']);
    assert.deepEqual(await virtualStep('info+x@example.org', o).then((s) => s?.kind === 'targets' && s.targets), ['alice+x@example.org', 'bob+x@remote.test']);
    const off = { ...o, propagateExtension: false };
    assert.deepEqual(await virtualStep('bob+news@example.org', off).then((s) => s?.kind === 'targets' && s.targets), ['robert@other.test']);
  });

  test('error targets and entries that no longer parse', async () => {
    assert.deepEqual(await virtualStep('gone@example.org', o), { kind: 'error', reason: '5.1.1 gone, try carol@example.org', key: 'gone@example.org', form: 'address' });
    const broken = { ...o, maps: { name: 'store', get: async () => '%z@x' } };
    const step = await virtualStep('a@b.test', broken);
    assert.equal(step?.kind, 'error');
    assert.match(step?.kind === 'error' ? step.reason : '', /^5\.3\.5 bad virtual alias table entry for a@b\.test: .*unknown template "%z"/);
  });
});

describe('virtual_alias_domains and the RCPT-time verdict', () => {
  const maps = inlineMap('v', { 'sales@only-virtual.test': 'bob@example.org', 'gone@only-virtual.test': 'error:5.1.6 moved to carol@example.org' });
  const o: VirtualAliasOptions = {
    maps,
    delimiters: '+',
    isLocal: () => false,
    myorigin: 'example.org',
    propagateExtension: true,
    aliasDomains: new Set(['only-virtual.test']),
  };
  test('an address of a virtual alias domain without an entry is unknown', async () => {
    assert.deepEqual(await virtualStep('nobody@Only-Virtual.test', o), { kind: 'error', reason: '5.1.1 user unknown in virtual alias table', key: '@only-virtual.test', form: 'domain' });
    assert.equal(await virtualStep('nobody@elsewhere.test', o), null);
  });
  test('verdicts', async () => {
    assert.deepEqual(await virtualRecipientVerdict('sales+x@only-virtual.test', o), { accept: true });
    assert.deepEqual(await virtualRecipientVerdict('gone@only-virtual.test', o), { accept: false, status: '5.1.6', text: 'moved to carol@example.org' });
    assert.deepEqual(await virtualRecipientVerdict('x@only-virtual.test', o), { accept: false, status: '5.1.1', text: 'user unknown in virtual alias table' });
    assert.equal(await virtualRecipientVerdict('x@elsewhere.test', o), null);
  });
});
