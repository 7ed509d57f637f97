import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionStats } from './stats.js';

test('Postfix-style command statistics', () => {
  const s = new SessionStats();
  s.count('EHLO', true);
  s.count('MAIL', true);
  s.count('RCPT', true);
  s.count('RCPT', false);
  s.count('GET', false);
  s.count('QUIT', true);
  assert.equal(s.summary(), 'ehlo=1 mail=1 rcpt=1/2 unknown=0/1 quit=1 commands=4/6');
  assert.equal(new SessionStats().summary(), 'commands=0');
});
