/*
 * `cartero sendmail -bs` as a real process: an SMTP dialogue piped into standard input is answered on
 * standard output and the message is queued (durably, before its 250), through the node's recipient
 * policy; an interactive client waits for each reply; bad input gets SMTP errors and queues nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { provisionAccount } from '../../src/directory/accounts.js';
import { openStore, type QueueEntry, type Store } from '../../src/store/index.js';
import { ROOT, tempConfig, type TempConfig } from './helpers.js';
import { runCmd } from './queue-helpers.js';

describe('cartero sendmail -bs', () => {
  let t: TempConfig;
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
    });
  });
  beforeEach(() => withStore(async (s) => Promise.all((await s.queue.list()).map((e) => s.queue.remove(e.id)))));
  after(() => t.cleanup());

  test('a piped dialogue (printf | sendmail -bs): replies on stdout only, the message queued once', async () => {
    const dialogue =
      'EHLO cron.local\r\nMAIL FROM:<cronuser@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<someone@remote.test>\r\nDATA\r\n' +
      'Subject: piped\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n';
    const r = await runCmd(['sendmail', '-bs', '-c', t.file], { stdin: dialogue, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\r\n');
    assert.match(lines[0] ?? '', /^220 mx\.example\.test ESMTP Cartero$/);
    const finals = lines.filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));
    assert.deepEqual(finals, ['220', '250', '250', '250', '250', '354', '250', '221'], r.stdout);
    assert.match(r.stdout, /\r\n250-PIPELINING\r\n/);
    assert.doesNotMatch(r.stdout, /STARTTLS/);
    assert.match(r.stdout, /\r\n250 2\.0\.0 Ok: queued as [0-9A-Z]+\r\n/);
    const [q, ...rest] = await entries();
    assert.equal(rest.length, 0);
    assert.equal(q?.entry.sender, 'cronuser@example.test');
    assert.deepEqual(q?.entry.recipients.map((x) => x.address), ['bob@example.test', 'someone@remote.test'], 'a local program may relay');
    assert.deepEqual([q?.entry.meta.client, q?.entry.meta.protocol, q?.entry.meta.user], ['local', 'sendmail-bs', 'cronuser']);
    assert.match(q?.content ?? '', /^Received: from cron\.local /);
    assert.match(q?.content ?? '', /\r\nSubject: piped\r\n\r\n\.leading dot\r\nbody\r\n$/);
    const queuedAs = /queued as ([0-9A-Z]+)/.exec(r.stdout)?.[1];
    assert.equal(queuedAs, q?.entry.id);
  });

  test('an interactive client: each reply before the next command; unknown local user refused; over-size refused', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/cartero.js'), 'sendmail', '-bs', '-c', t.file], { cwd: ROOT, env: { ...process.env, CARTERO_CONFIG: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let seen = 0;
    const next = async (): Promise<string> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const finals = out.split('\r\n').filter((l) => /^\d{3} /.test(l));
        if (finals.length > seen) return finals[seen++] ?? '';
        if (Date.now() > deadline) throw new Error(`no reply; stdout so far: ${out}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const say = async (line: string): Promise<string> => {
      child.stdin.write(`${line}\r\n`);
      return next();
    };
    try {
      assert.match(await next(), /^220 /);
      assert.match(await say('HELO cron.local'), /^250 /);
      assert.match(await say('MAIL FROM:<>'), /^250 /);
      assert.match(await say('RCPT TO:<nobody@example.test>'), /^550 5\.1\.1 /);
      assert.match(await say('RCPT TO:<bob@example.test>'), /^250 /);
      assert.match(await say('DATA'), /^354 /);
      assert.match(await say(`Subject: big\r\n\r\n${'x'.repeat(990)}\r\n`.repeat(25) + '.'), /^552 5\.3\.4 /);
      assert.match(await say('MAIL FROM:<cronuser@example.test>'), /^250 /);
      assert.match(await say('RCPT TO:<BOB@example.test>'), /^250 /);
      assert.match(await say('DATA'), /^354 /);
      assert.match(await say('Subject: small\r\n\r\nok\r\n.'), /^250 2\.0\.0 Ok: queued as /);
      assert.match(await say('QUIT'), /^221 /);
      assert.equal(await exited, 0);
    } finally {
      clearTimeout(killer);
      child.kill();
    }
    const all = await entries();
    assert.deepEqual(all.map((e) => e.entry.sender), ['cronuser@example.test']);
    assert.match(all[0]?.content ?? '', /Subject: small\r\n\r\nok\r\n$/);
  });

  test('end of input without QUIT ends the session cleanly; a message cut off in DATA is not queued', async () => {
    const r = await runCmd(['sendmail', '-bs', '-c', t.file], { stdin: 'EHLO x\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: cut\r\n\r\npartial', env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await entries(), []);
    const garbage = await runCmd(['sendmail', '-bs', '-c', t.file], { stdin: Buffer.from('\x00\xff\xfe garbage\r\nFOO\r\n' + 'A'.repeat(5000) + '\r\nQUIT\r\n', 'latin1'), env });
    assert.equal(garbage.code, 0, garbage.stderr);
    assert.match(garbage.stdout, /^220 /);
    assert.match(garbage.stdout, /\r\n500 5\.5\.\d /);
    assert.deepEqual(await entries(), []);
  });

  test('sendmail -q flushes without log lines on stderr (cron mails any output); the admin log records it', async () => {
    const r = await runCmd(['sendmail', '-q', '-c', t.file], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const log = await withStore((s) => s.queue.adminLog({ target: 'ALL', limit: 1 }));
    assert.equal(log[0]?.action, 'flush');
  });

  test('a store that cannot be opened: 421 on the SMTP channel, exit 75', async () => {
    const file = join(t.dir, 'no-store.yaml');
    writeFileSync(file, 'hostname: mx.example.test\nstore: { backend: postgres, url: "postgres://nobody@127.0.0.1:1/none" }\n');
    const r = await runCmd(['sendmail', '-bs', '-c', file], { stdin: 'EHLO x\r\nQUIT\r\n', env });
    assert.equal(r.code, 75, r.stderr);
    assert.equal(r.stdout, '421 4.3.0 mx.example.test Error: queue unavailable, try again later\r\n');
    assert.match(r.stderr, /^sendmail: queue unavailable/);
  });
});
