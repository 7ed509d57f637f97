/*
 * The SMTP client against a real peer: Postfix's smtp-sink (Debian package postfix) on loopback —
 * a batch of messages over reused connections, with the message bytes dumped by the sink and checked,
 * and a sink told to refuse RCPT with hard and soft errors. Skipped, saying why, when smtp-sink is not
 * installed.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Resolver } from '../../src/dns/types.js';
import { createSmtpAgent } from '../../src/delivery/smtp/agent.js';
import { captureLogger, job, smtpSinkPath, startSmtpSink } from './helpers.js';

const bin = smtpSinkPath();
const skip = bin ? false : 'smtp-sink not installed (Debian package postfix)';
const noDns: Resolver = { query: async () => ({ kind: 'temporary', reason: 'unused' }) };

function agent() {
  return createSmtpAgent({ resolver: noDns, logger: captureLogger().logger, myHostname: 'client.test', myAddresses: [], smtpPort: 25, tls: () => ({ level: 'may' }) });
}

test('20 messages to smtp-sink over reused connections, bytes intact (dumped by the sink)', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-sink-'));
  chmodSync(dir, 0o777);
  const dump = join(dir, 'dump');
  const sink = await startSmtpSink(bin!, ['-D', dump]);
  const a = agent();
  try {
    for (let i = 0; i < 20; i++) {
      const content = Buffer.from(`From: alice@sender.test\r\nSubject: sink ${i}\r\n\r\n.dot line ${i}\r\nend\r\n`);
      const r = await a.deliver(job(`smtp:[127.0.0.1]:${sink.port}`, [`r${i}@rcpt.test`, `s${i}@rcpt.test`], { content, queueId: `Q${i}` }));
      for (const v of r.results.values()) {
        assert.equal(v.outcome, 'done');
        assert.match(v.reason, /^250 /);
      }
      assert.equal(r.relay, `127.0.0.1[127.0.0.1]:${sink.port}`);
    }
    await a.close();
    const dumped = readFileSync(dump, 'latin1');
    for (let i = 0; i < 20; i++) {
      assert.ok(dumped.includes(`Subject: sink ${i}\r\n\r\n.dot line ${i}\r\nend\r\n`) || dumped.includes(`Subject: sink ${i}\n\n.dot line ${i}\nend\n`), `message ${i} in the dump`);
    }
  } finally {
    await a.close();
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('smtp-sink refusing RCPT: hard errors fail, soft errors defer, with the sink reply in the reason', { skip }, async () => {
  const hard = await startSmtpSink(bin!, ['-f', 'RCPT']);
  const soft = await startSmtpSink(bin!, ['-r', 'RCPT']);
  const a = agent();
  try {
    const r = await a.deliver(job(`smtp:[127.0.0.1]:${hard.port}`, ['a@rcpt.test']));
    assert.equal(r.results.get('a@rcpt.test')?.outcome, 'failed');
    assert.match(r.results.get('a@rcpt.test')!.reason, /^host 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ said: 5\d\d .*\(in reply to RCPT TO command\)$/);
    const r2 = await a.deliver(job(`smtp:[127.0.0.1]:${soft.port}`, ['a@rcpt.test']));
    assert.equal(r2.results.get('a@rcpt.test')?.outcome, 'deferred');
    assert.match(r2.results.get('a@rcpt.test')!.reason, / said: 4\d\d .*\(in reply to RCPT TO command\)$/);
  } finally {
    await a.close();
    await hard.stop();
    await soft.stop();
  }
});
