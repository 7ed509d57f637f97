/*
 * smtp.tempfail, the maintenance switch (Postfix's `defer`): at connect a 421 greeting, at mail/rcpt the
 * configured 4xx to each command, at data the 4xx after the message with nothing queued. A reload turns
 * it on and off for sessions already open (a sender's cached connection) without dropping them. The
 * schema refuses anything but a temporary reply. Real server on loopback, fake services.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';
import { tempfailRule } from '../../src/smtp/session/tempfail.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';
import { startTestServer, testConfig } from './env.js';

const REPLY = '451 4.3.2 Down for maintenance, try again later';
const withTempfail = (at: string, reply = REPLY) => testConfig({ mynetworks: ['127.0.0.0/8'] }, { tempfail: { at, reply } });
const open = () => testConfig({ mynetworks: ['127.0.0.0/8'] });
const BODY = 'From: a@remote.test\r\nSubject: t\r\n\r\nx\r\n.';

test('at connect: a 421 greeting with the configured text, and the connection ends', async () => {
  const t = await startTestServer({ config: withTempfail('connect') });
  try {
    await assert.rejects(TestSmtpClient.open(t.port('mx')), /greeting: 421 4\.3\.2 Down for maintenance/);
    assert.ok(t.logs.some((l) => l.status === 'reject' && l.code === 421));
  } finally {
    await t.close();
  }
});

test('at mail and at rcpt: every such command gets the 4xx; at data the message is read and refused, nothing queued', async () => {
  for (const at of ['mail', 'rcpt', 'data'] as const) {
    const t = await startTestServer({ config: withTempfail(at) });
    try {
      const c = await TestSmtpClient.open(t.port('mx'));
      await c.command('EHLO c.test', 250);
      const mail = await c.command('MAIL FROM:<a@remote.test>');
      if (at === 'mail') {
        assert.deepEqual([mail.code, mail.text], [451, '4.3.2 Down for maintenance, try again later']);
        assert.equal((await c.command('MAIL FROM:<b@remote.test>')).code, 451, 'every transaction');
      } else {
        assert.equal(mail.code, 250);
        const rcpt = await c.command('RCPT TO:<bob@example.test>');
        if (at === 'rcpt') assert.equal(rcpt.code, 451);
        else {
          assert.equal(rcpt.code, 250);
          await c.command('DATA', 354);
          assert.equal((await c.command(BODY)).code, 451);
          assert.equal(t.services.commits.length, 0, 'nothing queued');
        }
      }
      await c.command('QUIT', 221);
      c.close();
    } finally {
      await t.close();
    }
  }
});

test('a reload switches it on and off for a session already open', async () => {
  const t = await startTestServer({ config: open() });
  try {
    const c = await TestSmtpClient.open(t.port('mx'));
    await c.command('EHLO c.test', 250);
    t.server.reload(withTempfail('mail'));
    assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 451);
    t.server.reload(open());
    await c.command('MAIL FROM:<a@remote.test>', 250);
    await c.command('RCPT TO:<bob@example.test>', 250);
    await c.command('DATA', 354);
    assert.equal((await c.command(BODY)).code, 250);
    assert.equal(t.services.commits.length, 1);
    await c.command('QUIT', 221);
    c.close();
  } finally {
    await t.close();
  }
});

test('the schema: default point mail and a default reply; anything but a 4xx with a 4.x.x code is refused', () => {
  const ok = validateConfig({ smtp: { tempfail: {} } }, process.cwd());
  assert.ok('config' in ok);
  assert.deepEqual(ok.config.smtp.tempfail, { at: 'mail', reply: '451 4.3.2 Service temporarily unavailable, try again later' });
  const plain = validateConfig({}, process.cwd());
  assert.ok('config' in plain && plain.config.smtp.tempfail === undefined, 'off by default');
  for (const bad of [
    { at: 'helo' },
    { reply: '550 5.7.1 go away' },
    { reply: '451 5.3.2 mixed classes' },
    { reply: '451 maintenance' },
    { reply: '451 4.3.2 ' },
    { reply: '451 4.3.2 two\r\nlines' },
    { reply: 451 },
    { at: 'mail', reply: REPLY, extra: true },
  ]) {
    const r = validateConfig({ smtp: { tempfail: bad } }, process.cwd());
    assert.ok('problems' in r, JSON.stringify(bad));
    assert.ok(r.problems.some((p) => p.key.startsWith('smtp.tempfail')), JSON.stringify(r.problems));
  }
});

test('the rule: 421 at connect whatever the configured code; null when off', () => {
  assert.equal(tempfailRule(undefined), null);
  assert.deepEqual(tempfailRule({ at: 'connect', reply: REPLY }), { at: 'connect', reply: { code: 421, enhanced: '4.3.2', lines: ['Down for maintenance, try again later'] } });
  assert.deepEqual(tempfailRule({ at: 'rcpt', reply: '450 4.7.1 later' }), { at: 'rcpt', reply: { code: 450, enhanced: '4.7.1', lines: ['later'] } });
});
