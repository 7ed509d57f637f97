import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePath, type PathOptions } from './address.js';

const ascii: PathOptions = { smtputf8: false };

function address(text: string, opts: PathOptions = ascii): string | null {
  const r = parsePath(text, opts);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.problem}`);
  return r.mailbox?.address ?? null;
}

function problem(text: string, opts: PathOptions = ascii): string {
  const r = parsePath(text, opts);
  assert.ok(!r.ok, `${text} should be refused`);
  return r.problem;
}

test('ordinary mailboxes; domains lower-cased, local parts kept', () => {
  assert.equal(address('<Alice@Example.TEST>'), 'Alice@example.test');
  assert.equal(address("<o'brien+tag@sub.example.test>"), "o'brien+tag@sub.example.test");
  assert.equal(address('<a@localhost>'), 'a@localhost');
});

test('null sender only where allowed; postmaster without domain only for RCPT', () => {
  assert.equal(address('<>', { smtputf8: false, allowNull: true }), null);
  assert.equal(problem('<>'), 'syntax');
  assert.equal(address('<Postmaster>', { smtputf8: false, allowPostmaster: true }), 'postmaster');
  assert.equal(problem('<postmaster>'), 'syntax');
});

test('parameters after the path are returned as rest', () => {
  const r = parsePath('<a@b.test> SIZE=100 BODY=8BITMIME', ascii);
  assert.ok(r.ok);
  assert.equal(r.rest, ' SIZE=100 BODY=8BITMIME');
  assert.equal(problem('<a@b.test>SIZE=100'), 'syntax');
});

test('source routes are refused', () => {
  assert.equal(problem('<@relay.example:user@victim.test>'), 'source_route');
  assert.equal(problem('<@a.example,@b.example:user@victim.test>'), 'source_route');
});

test('percent hacks and bang paths are plain local parts, never reinterpreted', () => {
  assert.equal(address('<user%victim.test@example.test>'), 'user%victim.test@example.test');
  assert.equal(address('<victim.test!user@example.test>'), 'victim.test!user@example.test');
});

test('quoted local parts: routing characters refused, dot-atoms unquoted, the rest kept opaque', () => {
  assert.equal(problem('<"user@victim.test"@example.test>'), 'unsafe_quoted');
  assert.equal(problem('<"user%victim.test"@example.test>'), 'unsafe_quoted');
  assert.equal(problem('<"victim!user"@example.test>'), 'unsafe_quoted');
  assert.equal(problem('<"us\\@er"@example.test>'), 'unsafe_quoted');
  assert.equal(address('<"alice"@example.test>'), 'alice@example.test');
  assert.equal(address('<"john doe"@example.test>'), '"john doe"@example.test');
  assert.equal(address('<"a>b"@example.test>'), '"a>b"@example.test');
  assert.equal(address('<"q\\"x"@example.test>'), '"q\\"x"@example.test');
});

test('address literals are recognised (policy refuses them for relay)', () => {
  const r = parsePath('<user@[192.0.2.1]>', ascii);
  assert.ok(r.ok && r.mailbox?.literal === true && r.mailbox.address === 'user@[192.0.2.1]');
  assert.equal(address('<user@[IPv6:2001:DB8::1]>'), 'user@[IPv6:2001:db8::1]');
  assert.equal(problem('<user@[300.1.1.1]>'), 'syntax');
  assert.equal(problem('<user@[tag:stuff]>'), 'syntax');
});

test('one trailing dot is normalised away, more are refused', () => {
  assert.equal(address('<user@example.test.>'), 'user@example.test');
  assert.equal(problem('<user@example.test..>'), 'syntax');
  assert.equal(problem('<user@.example.test>'), 'syntax');
});

test('syntax errors', () => {
  for (const bad of ['a@b.test', '<a@b.test', '<@>', '<a@>', '<@b.test>', '<a b@c.test>', '<.a@b.test>', '<a.@b.test>', '<a..b@c.test>', '<a@-b.test>', '<a@b_c.test>', '<a@@b.test>', '<"unterminated@b.test>']) {
    assert.equal(problem(bad), 'syntax', bad);
  }
});

test('UTF-8 needs SMTPUTF8', () => {
  assert.equal(problem('<jörg@example.test>'), 'utf8');
  assert.equal(problem('<user@exämple.test>'), 'utf8');
  const r = parsePath('<jörg@exämple.test>', { smtputf8: true });
  assert.ok(r.ok && r.mailbox?.utf8 === true && r.mailbox.address === 'jörg@exämple.test');
});

test('paths longer than 256 octets are refused', () => {
  assert.equal(problem(`<${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.test>`), 'too_long');
});
