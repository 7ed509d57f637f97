import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inlineMap, type LookupMap } from './maps.js';
import { AddressRewriter, masquerade, MAX_CANONICAL_CHAIN, type RewriterOptions } from './rewrite.js';

describe('masquerade', () => {
  const m = { domains: ['!dept.example.org', 'example.org', 'other.test'], exceptions: ['root', 'MAILER-DAEMON'] };
  test('subdomains become the listed domain; the domain itself is unchanged', () => {
    assert.equal(masquerade('user@host.sub.example.org', m), 'user@example.org');
    assert.equal(masquerade('User@HOST.Example.ORG', m), 'User@example.org');
    assert.equal(masquerade('user@example.org', m), 'user@example.org');
    assert.equal(masquerade('user@notexample.org', m), 'user@notexample.org');
    assert.equal(masquerade('user@a.other.test', m), 'user@other.test');
  });
  test('! exceptions (first match wins) and user exceptions', () => {
    assert.equal(masquerade('user@ws1.dept.example.org', m), 'user@ws1.dept.example.org');
    assert.equal(masquerade('user@dept.example.org', m), 'user@example.org', 'dept.example.org itself is a subdomain of example.org');
    assert.equal(masquerade('root@host.example.org', m), 'root@host.example.org');
    assert.equal(masquerade('mailer-daemon@host.example.org', m), 'mailer-daemon@host.example.org');
    assert.equal(masquerade('', m), '');
    assert.equal(masquerade('nodomain', m), 'nodomain');
  });
});

function rewriter(o: Partial<RewriterOptions> = {}): AddressRewriter {
  return new AddressRewriter({
    canonical: null,
    senderCanonical: null,
    recipientCanonical: null,
    masquerade: null,
    masqueradeClasses: ['envelope_sender', 'header_sender', 'header_recipient'],
    delimiters: '+',
    isLocal: (d) => d === 'example.org',
    myorigin: 'example.org',
    propagateExtension: true,
    ...o,
  });
}

describe('canonical maps on the envelope', () => {
  const canonical = inlineMap('canonical_maps', {
    'jdoe@example.org': 'John.Doe@example.org',
    'old@example.org': 'new@example.org',
    'new@example.org': 'newest@example.org',
    '@legacy.test': '@example.org',
    webmaster: 'www-admin',
    'multi@example.org': 'first@example.org, second@example.org',
  });
  const sender = inlineMap('sender_canonical_maps', { 'alice@host.example.org': 'alice@example.org' });
  const recipient = inlineMap('recipient_canonical_maps', { 'alice@host.example.org': 'alice-in@example.org', 'x@r.test': 'jdoe@example.org' });
  const rw = rewriter({ canonical, senderCanonical: sender, recipientCanonical: recipient });

  test('sender: sender_canonical then canonical; recipient: recipient_canonical then canonical', async () => {
    assert.equal(await rw.rewriteSender('alice@host.example.org'), 'alice@example.org');
    assert.equal(await rw.rewriteRecipient('alice@host.example.org'), 'alice-in@example.org');
    assert.equal(await rw.rewriteRecipient('x@r.test'), 'John.Doe@example.org');
    assert.equal(await rw.rewriteSender('nobody@else.test'), 'nobody@else.test');
    assert.equal(await rw.rewriteSender(''), '');
  });

  test('chains to a fixed point, @domain keeps the user, bare user only for our domains, first of several values', async () => {
    assert.equal(await rw.rewriteSender('old@example.org'), 'newest@example.org');
    assert.equal(await rw.rewriteSender('Someone+tag@legacy.test'), 'Someone+tag@example.org');
    assert.equal(await rw.rewriteSender('webmaster@example.org'), 'www-admin@example.org');
    assert.equal(await rw.rewriteSender('webmaster@elsewhere.test'), 'webmaster@elsewhere.test');
    assert.equal(await rw.rewriteSender('multi@example.org'), 'first@example.org');
  });

  test('an unmatched extension is propagated unless disabled', async () => {
    assert.equal(await rw.rewriteSender('jdoe+lists@example.org'), 'John.Doe+lists@example.org');
    const noProp = rewriter({ canonical, propagateExtension: false });
    assert.equal(await noProp.rewriteSender('jdoe+lists@example.org'), 'John.Doe@example.org');
  });

  test('a canonical loop stops after the chain limit and is reported', async () => {
    const loops: string[] = [];
    let lookups = 0;
    const loop: LookupMap = {
      name: 'loop',
      get: async (k) => {
        lookups++;
        return k === 'a@example.org' ? 'b@example.org' : k === 'b@example.org' ? 'a@example.org' : null;
      },
    };
    const r = rewriter({ canonical: loop, onLoop: (a) => loops.push(a) });
    const out = await r.rewriteSender('a@example.org');
    assert.ok(out === 'a@example.org' || out === 'b@example.org');
    assert.deepEqual(loops, ['a@example.org']);
    assert.ok(lookups <= MAX_CANONICAL_CHAIN * 5);
  });

  test('masquerading by class: envelope sender yes, envelope recipient only when listed', async () => {
    const m = { domains: ['example.org'], exceptions: ['root'] };
    const r = rewriter({ masquerade: m });
    assert.equal(await r.rewriteSender('user@host.sub.example.org'), 'user@example.org');
    assert.equal(await r.rewriteRecipient('user@host.sub.example.org'), 'user@host.sub.example.org');
    const all = rewriter({ masquerade: m, masqueradeClasses: ['envelope_recipient'] });
    assert.equal(await all.rewriteRecipient('user@host.sub.example.org'), 'user@example.org');
    assert.equal(await all.rewriteSender('user@host.sub.example.org'), 'user@host.sub.example.org');
    assert.equal(rewriter().active, false);
    assert.equal(r.active, true);
  });
});

describe('header rewriting is byte-exact', () => {
  const canonical = inlineMap('canonical_maps', { 'jdoe@example.org': 'John.Doe@example.org', 'cc@example.org': 'carbon@example.org' });
  const rw = rewriter({ canonical, masquerade: { domains: ['example.org'], exceptions: ['root'] } });

  const header = [
    'Received: from ws1.sub.example.org (ws1.sub.example.org [192.0.2.1])\r\n\tby mx.example.org; Mon, 1 Jan 2024 00:00:00 +0000',
    'From: =?UTF-8?Q?J=C3=B6hn_D=C3=B6e?= <jdoe@ws1.sub.example.org>',
    'Sender: "Doe, John (work)" <jdoe@example.org>',
    'Reply-To: list: jdoe@example.org, "Other" <other@host.example.org> (comment);',
    'To: root@ws1.example.org,\r\n  Friend <friend@remote.test>,\r\n\t"Cc" <cc@example.org>',
    'Cc: undisclosed-recipients:;',
    'Message-ID: <jdoe@ws1.sub.example.org>',
    'In-Reply-To: <x@host.example.org>',
    'Subject: mail for jdoe@example.org',
    'X-Original-From: jdoe@ws1.sub.example.org',
  ].join('\r\n');
  const body = '\r\nFrom: jdoe@example.org in the body stays\r\n> To: cc@example.org\r\n';
  const content = Buffer.from(`${header}\r\n${body}`, 'utf8');

  test('only address fields change, only inside the addresses', async () => {
    const { content: out, changes } = await rw.rewriteHeaders(content);
    const expected = [
      'Received: from ws1.sub.example.org (ws1.sub.example.org [192.0.2.1])\r\n\tby mx.example.org; Mon, 1 Jan 2024 00:00:00 +0000',
      'From: =?UTF-8?Q?J=C3=B6hn_D=C3=B6e?= <jdoe@example.org>',
      'Sender: "Doe, John (work)" <John.Doe@example.org>',
      'Reply-To: list: John.Doe@example.org, "Other" <other@example.org> (comment);',
      'To: root@ws1.example.org,\r\n  Friend <friend@remote.test>,\r\n\t"Cc" <carbon@example.org>',
      'Cc: undisclosed-recipients:;',
      'Message-ID: <jdoe@ws1.sub.example.org>',
      'In-Reply-To: <x@host.example.org>',
      'Subject: mail for jdoe@example.org',
      'X-Original-From: jdoe@ws1.sub.example.org',
    ].join('\r\n');
    assert.equal(out.toString('utf8'), `${expected}\r\n${body}`);
    assert.deepEqual(changes, [
      { field: 'From', from: 'jdoe@ws1.sub.example.org', to: 'jdoe@example.org' },
      { field: 'Sender', from: 'jdoe@example.org', to: 'John.Doe@example.org' },
      { field: 'Reply-To', from: 'jdoe@example.org', to: 'John.Doe@example.org' },
      { field: 'Reply-To', from: 'other@host.example.org', to: 'other@example.org' },
      { field: 'To', from: 'cc@example.org', to: 'carbon@example.org' },
    ]);
  });

  test('canonical first, then masquerading (the masqueraded result is not looked up again)', async () => {
    // jdoe@ws1.sub.example.org has no canonical entry, so only masquerading applies (not chained into canonical).
    assert.equal(await rw.rewriteSender('jdoe@ws1.sub.example.org'), 'jdoe@example.org');
  });

  test('nothing to change: the very same buffer; malformed fields are left alone', async () => {
    const plain = Buffer.from('From: a@remote.test\r\nTo: b@remote.test\r\n\r\nbody\r\n');
    assert.equal((await rw.rewriteHeaders(plain)).content, plain);
    const broken = Buffer.from('From: "unterminated <jdoe@example.org>\r\nTo: <cc@example.org\r\nCc: cc@example.org\r\n\r\n');
    const out = await rw.rewriteHeaders(broken);
    assert.equal(out.content.toString(), 'From: "unterminated <jdoe@example.org>\r\nTo: <cc@example.org\r\nCc: carbon@example.org\r\n\r\n');
  });

  test('bare LF messages and 8-bit bytes elsewhere survive unchanged', async () => {
    const raw = Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xff, 0xfe]), Buffer.from('\nFrom: jdoe@example.org\n\nbody \xe9\n', 'latin1')]);
    const out = await rw.rewriteHeaders(raw);
    const expected = Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xff, 0xfe]), Buffer.from('\nFrom: John.Doe@example.org\n\nbody \xe9\n', 'latin1')]);
    assert.deepEqual(out.content, expected);
  });
});
