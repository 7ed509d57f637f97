import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { provisionAccount } from '../../src/directory/accounts.js';
import { buildPipeline, captureLogger, inboxTexts } from '../../src/queue/testing.js';
import { systemClock } from '../../src/store/api.js';
import { openStore, type QueueEntry, type Store } from '../../src/store/index.js';
import { tempConfig, type TempConfig } from './helpers.js';
import { runCmd } from './queue-helpers.js';

describe('cartero sendmail', () => {
  let t: TempConfig;
  const c = (): string[] => ['-c', t.file];
  const env = { USER: 'cronuser' };

  async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  const entries = (): Promise<{ entry: QueueEntry; content: string }[]> =>
    withStore(async (s) => Promise.all((await s.queue.list()).map(async (entry) => ({ entry, content: (await s.queue.content(entry.id)).toString('utf8') }))));

  before(async () => {
    t = tempConfig('domains: [example.test]\nsmtp: { message_size_limit: 20000 }\n');
    await withStore(async (s) => {
      await s.directory.addDomain('example.test');
      await provisionAccount(s, 'bob@example.test', null);
      await provisionAccount(s, 'carol@example.test', null);
    });
  });
  beforeEach(() => withStore(async (s) => Promise.all((await s.queue.list()).map((e) => s.queue.remove(e.id)))));
  after(() => t.cleanup());

  test('a script submission: silent exit 0, CRLF, headers added, sender user@hostname, queued once', async () => {
    const r = await runCmd(['sendmail', ...c(), 'bob@example.test'], { stdin: 'Subject: nightly report\n\nall good\n', env });
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
    const [q, ...rest] = await entries();
    assert.equal(rest.length, 0);
    assert.equal(q?.entry.sender, 'cronuser@mx.example.test');
    assert.deepEqual(q?.entry.recipients.map((x) => x.address), ['bob@example.test']);
    assert.deepEqual({ client: q?.entry.meta.client, protocol: q?.entry.meta.protocol, user: q?.entry.meta.user, body: q?.entry.meta.body }, { client: 'local', protocol: 'sendmail', user: 'cronuser', body: '7BIT' });
    assert.match(q?.content ?? '', /^Received: by mx\.example\.test \(Cartero sendmail, from userid \d+\);\r\n\t[^\r\n]+\r\nFrom: cronuser@mx\.example\.test\r\nDate: [^\r\n]+\r\nMessage-ID: <[^>]+@mx\.example\.test>\r\nSubject: nightly report\r\n\r\nall good\r\n$/);
    assert.doesNotMatch(q?.content ?? '', /[^\r]\n/);
  });

  test('-t -oi -f -F with the obsolete options scripts pass: header recipients, Bcc removed, dots kept', async () => {
    const input = 'To: Bob <bob@example.test>\nCc: carol@example.test\nBcc: hidden@remote.test\nSubject: t\n\nline\n.\nafter the dot\n';
    const r = await runCmd(['sendmail', '-t', '-oi', '-odi', '-oem', '-fbounces@example.test', '-F', 'Cron Daemon', ...c()], { stdin: input, env });
    assert.deepEqual([r.code, r.stderr], [0, '']);
    const [q] = await entries();
    assert.equal(q?.entry.sender, 'bounces@example.test');
    assert.deepEqual(q?.entry.recipients.map((x) => x.address).sort(), ['bob@example.test', 'carol@example.test', 'hidden@remote.test']);
    assert.doesNotMatch(q?.content ?? '', /Bcc|hidden/);
    assert.match(q?.content ?? '', /\r\nFrom: Cron Daemon <bounces@example\.test>\r\n/);
    assert.match(q?.content ?? '', /\r\nline\r\n\.\r\nafter the dot\r\n$/);
  });

  test('without -i a lone "." ends the message; -N/-R/-V reach the envelope; -f <> is the null sender', async () => {
    const r = await runCmd(['sendmail', '-f', '<>', '-N', 'success,failure', '-R', 'hdrs', '-V', 'job-42', ...c(), 'bob@example.test'], { stdin: 'Subject: x\n\nkept\n.\ndropped\n', env });
    assert.equal(r.code, 0, r.stderr);
    const [q] = await entries();
    assert.equal(q?.entry.sender, '');
    assert.deepEqual(q?.entry.recipients[0]?.notify, ['SUCCESS', 'FAILURE']);
    assert.deepEqual([q?.entry.meta.ret, q?.entry.meta.envid], ['HDRS', 'job-42']);
    assert.match(q?.content ?? '', /\r\nkept\r\n$/);
  });

  test('refusals exit with sysexits codes and queue nothing', async () => {
    writeFileSync(join(t.dir, 'bad.yaml'), 'hostname: 7\n');
    const cases: { args: string[]; stdin: string | Buffer; code: number; err: RegExp }[] = [
      { args: [], stdin: 'Subject: x\n\nb\n', code: 64, err: /no recipient addresses given/ },
      { args: ['-t'], stdin: 'Subject: no rcpt\n\nb\n', code: 65, err: /no recipient addresses found in the message header/ },
      { args: ['bob@example.test'], stdin: Buffer.from('Subject: x\n\nnul\0byte\n'), code: 65, err: /NUL/ },
      { args: ['bob@example.test'], stdin: 'Subject: x\n\nbare\rCR\n', code: 65, err: /bare CR/ },
      { args: ['bob@example.test'], stdin: 'x'.repeat(30_000), code: 65, err: /exceeds the limit of 20000 bytes/ },
      { args: ['bob@example.test'], stdin: `Subject: x\n\n${'y'.repeat(19_900)}\n`, code: 65, err: /exceeds the limit/ },
      { args: ['not an address@@x'], stdin: 'b\n', code: 64, err: /bad address syntax/ },
      { args: ['-t'], stdin: 'To: "unterminated@example.test\n\nb\n', code: 65, err: /unterminated quoted string/ },
      { args: ['-Z', 'bob@example.test'], stdin: 'b\n', code: 64, err: /unknown option -Z/ },
      { args: ['-bd'], stdin: '', code: 64, err: /-bd is not supported \(supported: -bm, -bp, -bs\)/ },
    ];
    for (const k of cases) {
      const r = await runCmd(['sendmail', ...c(), ...k.args], { stdin: k.stdin, env });
      assert.equal(r.code, k.code, `${k.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^sendmail: /);
      assert.match(r.stderr, k.err);
      assert.equal(r.stdout, '');
    }
    const cfg = await runCmd(['sendmail', '-c', join(t.dir, 'bad.yaml'), 'bob@example.test'], { stdin: 'b\n', env });
    assert.equal(cfg.code, 78, cfg.stderr);
    assert.match(cfg.stderr, /^sendmail: .*hostname/);
    assert.deepEqual(await entries(), []);
  });

  test('-bp lists the queue, --help documents the options', async () => {
    assert.equal((await runCmd(['sendmail', ...c(), 'bob@example.test'], { stdin: 'Subject: q\n\nb\n', env })).code, 0);
    const bp = await runCmd(['sendmail', '-bp', ...c()], { env });
    assert.equal(bp.code, 0, bp.stderr);
    assert.match(bp.stdout, /cronuser@mx\.example\.test\n +bob@example\.test\n\n-- 1 Kbytes in 1 Request\.\n$/);
    const help = await runCmd(['sendmail', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /-oi/);
  });

  test('a submitted message is delivered to the local mailbox when the scheduler runs', async () => {
    const r = await runCmd(['sendmail', ...c(), 'carol@example.test'], { stdin: 'Subject: deliver me\n\nhello carol\n', env });
    assert.equal(r.code, 0, r.stderr);
    await withStore(async (s) => {
      const { logger } = captureLogger();
      const p = buildPipeline(s, systemClock, logger, { domains: ['example.test'] });
      assert.equal(await p.scheduler.runOnce(), 1);
      const inbox = await inboxTexts(s, 'carol@example.test');
      assert.equal(inbox.length, 1);
      assert.match(inbox[0]!, /^Return-Path: <cronuser@mx\.example\.test>\r\nDelivered-To: carol@example\.test\r\nReceived: by mx\.example\.test/);
      assert.match(inbox[0]!, /Subject: deliver me\r\n\r\nhello carol\r\n$/);
      assert.deepEqual(await s.queue.list(), []);
    });
  });
});
