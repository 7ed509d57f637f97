import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand, parseNumber } from './command.js';

test('every command, keywords case-insensitive', () => {
  assert.deepEqual(parseCommand('user alice@example.test'), { ok: true, command: { verb: 'USER', name: 'alice@example.test' } });
  assert.deepEqual(parseCommand('PASS sec ret  '), { ok: true, command: { verb: 'PASS', password: 'sec ret  ' } });
  assert.deepEqual(parseCommand('AUTH'), { ok: true, command: { verb: 'AUTH', mechanism: null, initial: null } });
  assert.deepEqual(parseCommand('AUTH plain AGFsaWNlAHM='), { ok: true, command: { verb: 'AUTH', mechanism: 'PLAIN', initial: 'AGFsaWNlAHM=' } });
  for (const verb of ['CAPA', 'STLS', 'QUIT', 'STAT', 'NOOP', 'RSET']) assert.deepEqual(parseCommand(verb.toLowerCase()), { ok: true, command: { verb } });
  assert.deepEqual(parseCommand('LIST'), { ok: true, command: { verb: 'LIST', msg: null } });
  assert.deepEqual(parseCommand('UIDL 7'), { ok: true, command: { verb: 'UIDL', msg: 7 } });
  assert.deepEqual(parseCommand('RETR 1'), { ok: true, command: { verb: 'RETR', msg: 1 } });
  assert.deepEqual(parseCommand('DELE 0'), { ok: true, command: { verb: 'DELE', msg: 0 } });
  assert.deepEqual(parseCommand('TOP 2 0'), { ok: true, command: { verb: 'TOP', msg: 2, lines: 0 } });
});

test('unknown commands and wrong arguments are typed errors', () => {
  assert.deepEqual(parseCommand('FOO bar'), { ok: false, error: { kind: 'unknown', verb: 'FOO' } });
  assert.deepEqual(parseCommand(''), { ok: false, error: { kind: 'unknown', verb: '' } });
  assert.deepEqual(parseCommand('APOP alice 0123456789abcdef'), { ok: false, error: { kind: 'unknown', verb: 'APOP' } });
  const syntax = (line: string): string | undefined => {
    const r = parseCommand(line);
    return r.ok ? undefined : r.error.kind;
  };
  for (const bad of ['TOP 1 -1', 'TOP -1 5', 'TOP 1', 'TOP 1 2 3', 'RETR', 'RETR x', 'RETR 1 2', 'DELE +1', 'LIST 1 2', 'LIST -3', 'STAT 1', 'QUIT now', 'USER', 'USER a b', 'PASS', 'PASS ', 'RETR  1', 'AUTH PLAIN a b', `USER ${'u'.repeat(41)}`]) {
    assert.equal(syntax(bad), 'syntax', bad);
  }
});

test('numbers: digits only; too many digits become Infinity (no such message), never a wrong number', () => {
  assert.equal(parseNumber('0'), 0);
  assert.equal(parseNumber('0012'), 12);
  assert.equal(parseNumber('99999999999999999999'), Infinity);
  assert.equal(parseNumber('-1'), null);
  assert.equal(parseNumber('1e3'), null);
  assert.equal(parseNumber(''), null);
  assert.deepEqual(parseCommand('TOP 1 99999999999999999999'), { ok: true, command: { verb: 'TOP', msg: 1, lines: Infinity } });
});
