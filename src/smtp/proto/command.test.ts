import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand, type Command } from './command.js';
import { errorReply } from './errors.js';
import { formatReply } from './reply.js';

const opts = { smtputf8: false };

function ok(line: string, o = opts): Command {
  const r = parseCommand(line, o);
  assert.ok(r.ok, `${line}: ${r.ok ? '' : formatReply(errorReply(r.error))}`);
  return r.command;
}

/** The reply line a refused command gets. */
function refused(line: string, o = opts): string {
  const r = parseCommand(line, o);
  assert.ok(!r.ok, `${line} should be refused`);
  return formatReply(errorReply(r.error)).trimEnd();
}

test('verbs are case-insensitive; simple verbs take no argument', () => {
  assert.deepEqual(ok('ehlo client.example'), { verb: 'EHLO', domain: 'client.example' });
  assert.deepEqual(ok('HELO [192.0.2.1]'), { verb: 'HELO', domain: '[192.0.2.1]' });
  assert.deepEqual(ok('data'), { verb: 'DATA' });
  assert.deepEqual(ok('NOOP anything at all'), { verb: 'NOOP' });
  assert.equal(refused('DATA now'), '501 5.5.4 Syntax: DATA');
  assert.equal(refused('EHLO'), '501 5.5.4 Syntax: EHLO hostname');
  assert.equal(refused('EHLO two words'), '501 5.5.4 Syntax: EHLO hostname');
});

test('unknown and unimplemented commands', () => {
  assert.equal(refused('FOO bar'), '500 5.5.1 Error: command not recognized');
  assert.equal(refused(''), '500 5.5.1 Error: command not recognized');
  assert.equal(refused('EXPN staff'), '502 5.5.1 Error: command not implemented');
  const r = parseCommand('GET / HTTP/1.1', opts);
  assert.ok(!r.ok && r.verb === 'UNKNOWN');
});

test('MAIL with parameters', () => {
  const c = ok('MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>');
  assert.ok(c.verb === 'MAIL');
  assert.equal(c.sender?.address, 'a@b.test');
  assert.deepEqual(c.params, { size: 1000, body: '8BITMIME', smtputf8: false, ret: 'HDRS', envid: 'QQ+1', auth: '<>' });
  const nul = ok('mail from: <>');
  assert.ok(nul.verb === 'MAIL' && nul.sender === null);
});

test('MAIL and RCPT errors map to the right codes', () => {
  assert.equal(refused('MAIL <a@b.test>'), '501 5.5.4 Syntax: MAIL FROM:<address>');
  assert.equal(refused('MAIL FROM:a@b.test'), '501 5.1.7 Bad sender address syntax');
  assert.equal(refused('RCPT TO:<a b@c.test>'), '501 5.1.3 Bad recipient address syntax');
  assert.equal(refused('RCPT TO:<@x.test:a@c.test>'), '553 5.1.3 Source routes are not accepted');
  assert.equal(refused('RCPT TO:<"a@b"@c.test>'), '553 5.1.3 Quoted local parts with "@", "%" or "!" are not accepted');
  assert.equal(refused('MAIL FROM:<"a%b"@c.test>'), '553 5.1.7 Quoted local parts with "@", "%" or "!" are not accepted');
  assert.equal(refused('RCPT TO:<>'), '501 5.1.3 Bad recipient address syntax');
  assert.equal(refused('MAIL FROM:<a@b.test> FOO=1'), '555 5.5.4 Unsupported option: FOO');
  assert.equal(refused('MAIL FROM:<a@b.test> SIZE=big'), '501 5.5.4 Bad SIZE parameter');
  assert.equal(refused('MAIL FROM:<a@b.test> SIZE=1 SIZE=2'), '501 5.5.4 Duplicate parameter: SIZE');
  assert.equal(refused('RCPT TO:<a@b.test> NOTIFY=NEVER,SUCCESS'), '501 5.5.4 Bad NOTIFY parameter');
});

test('UTF-8 addresses need SMTPUTF8: on MAIL itself, on RCPT from the transaction', () => {
  assert.equal(refused('MAIL FROM:<jörg@example.test>'), '553 5.6.7 Must declare SMTPUTF8 to send UTF-8 addresses');
  const c = ok('MAIL FROM:<jörg@example.test> SMTPUTF8');
  assert.ok(c.verb === 'MAIL' && c.params.smtputf8);
  assert.equal(refused('RCPT TO:<jörg@example.test>'), '553 5.6.7 Must declare SMTPUTF8 to send UTF-8 addresses');
  assert.equal((ok('RCPT TO:<jörg@example.test>', { smtputf8: true }) as { recipient: { address: string } }).recipient.address, 'jörg@example.test');
});

test('RCPT with DSN parameters', () => {
  const c = ok('RCPT TO:<bob@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+2Bx@example.test');
  assert.ok(c.verb === 'RCPT');
  assert.deepEqual(c.params, { notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;bob+x@example.test' });
  const postmaster = ok('RCPT TO:<postmaster>');
  assert.ok(postmaster.verb === 'RCPT' && postmaster.recipient.address === 'postmaster');
});

test('BDAT and AUTH', () => {
  assert.deepEqual(ok('BDAT 1000'), { verb: 'BDAT', size: 1000, last: false });
  assert.deepEqual(ok('bdat 0 last'), { verb: 'BDAT', size: 0, last: true });
  assert.equal(refused('BDAT -1'), '501 5.5.4 Syntax: BDAT count [LAST]');
  assert.equal(refused('BDAT 10 MORE'), '501 5.5.4 Syntax: BDAT count [LAST]');
  assert.deepEqual(ok('AUTH plain AGFsaWNlAHNlY3JldA=='), { verb: 'AUTH', mechanism: 'PLAIN', initial: 'AGFsaWNlAHNlY3JldA==' });
  assert.deepEqual(ok('AUTH LOGIN'), { verb: 'AUTH', mechanism: 'LOGIN', initial: null });
  assert.deepEqual(ok('AUTH PLAIN ='), { verb: 'AUTH', mechanism: 'PLAIN', initial: '=' });
  assert.equal(refused('AUTH'), '501 5.5.4 Syntax: AUTH mechanism [initial-response]');
});
