/*
 * What every protocol does while PostgreSQL is unreachable or read-only, on a real `cartero serve` over a
 * private PostgreSQL that this test stops, starts and demotes (never the machine's own cluster):
 * SMTP 451 4.3.0 (never 250), LMTP 4xx per recipient, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP];
 * service comes back by itself, and every 250 is in the mailbox exactly once.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/auth/password.js';
import { openStore, type Store } from '../../src/store/index.js';
import { freePort, spawnCli } from '../cli/helpers.js';
import { TestSmtpClient, type Reply } from '../helpers/smtp-client.js';
import { LineClient } from './line-client.js';
import { startPrivatePg, type PrivatePg } from './private-pg.js';

const USER = 'alice@example.test';
const PASSWORD = 's3cret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One message through SMTP (or LMTP with lhlo); the first refusal, or the final reply after DATA. */
async function attempt(port: number, tag: string, lmtp = false): Promise<Reply> {
  const c = await TestSmtpClient.open(port);
  try {
    await c.command(lmtp ? 'LHLO test.client' : 'EHLO test.client', 250);
    const mail = await c.command('MAIL FROM:<bob@remote.test>');
    if (mail.code !== 250) return mail;
    const rcpt = await c.command(`RCPT TO:<${USER}>`);
    if (rcpt.code !== 250) return rcpt;
    const data = await c.command('DATA');
    if (data.code !== 354) return data;
    return await c.command(`Subject: ${tag}\r\nMessage-ID: <${tag}@test>\r\n\r\nbody ${tag}\r\n.`);
  } finally {
    c.close();
  }
}

function temporary(r: Reply): boolean {
  return r.code >= 400 && r.code < 500;
}

describe('database trouble on a private PostgreSQL', { timeout: 180_000 }, () => {
  let pgServer: PrivatePg | null = null;
  let skipped = '';
  let dir = '';
  let child: ChildProcess | null = null;
  let output = '';
  const ports = { smtp: 0, lmtp: 0, imap: 0, pop3: 0 };
  /** Message-IDs that got 250 */
  const accepted: string[] = [];

  before(async () => {
    const started = await startPrivatePg();
    if ('skipped' in started) {
      skipped = started.skipped;
      return;
    }
    pgServer = started;
    await pgServer.sql('CREATE DATABASE cartero');
    const store = await openStore({ backend: 'postgres', url: pgServer.url('cartero') });
    await store.directory.addDomain('example.test');
    await store.directory.addAccount({ address: USER, passwordHash: await hashPassword(PASSWORD) });
    await store.close();
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'cartero-dbtrouble-'));
    const file = join(dir, 'cartero.yaml');
    writeFileSync(
      file,
      `hostname: mx.example.test
store: { backend: postgres, url: "${pgServer.url('cartero')}", pool_size: 4 }
domains: [example.test]
smtp: { listen: [ { address: 127.0.0.1, port: ${ports.smtp} } ] }
lmtp: { listen: [ { address: 127.0.0.1, port: ${ports.lmtp} } ] }
imap: { listen: [ { address: 127.0.0.1, port: ${ports.imap} } ] }
pop3: { listen: [ { address: 127.0.0.1, port: ${ports.pop3} } ] }
# a delivery in flight when the database goes away cannot record its outcome: it is retried when its
# lease runs out (60 s by default), so a short lease keeps this test short
delivery: { poll_interval_ms: 500, lease_seconds: 5 }
log: { level: info, format: text }
`,
    );
    child = spawnCli(['serve', '-c', file]);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
    const deadline = Date.now() + 30_000;
    while ((output.match(/listening/g) ?? []).length < 4) {
      if (child.exitCode !== null) assert.fail(`serve exited (${child.exitCode}):\n${output}`);
      if (Date.now() > deadline) assert.fail(`serve did not start:\n${output}`);
      await sleep(100);
    }
  });

  after(async () => {
    if (child && child.exitCode !== null) console.error(`serve exited early (${child.exitCode}):\n${output.slice(-3000)}`);
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child?.once('exit', r)), sleep(15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await pgServer?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function inbox(): Promise<string[]> {
    const store: Store = await openStore({ backend: 'postgres', url: pgServer?.url('cartero') ?? '' }, { migrate: false });
    try {
      const account = await store.directory.getAccount(USER);
      const box = account && (await store.mailboxes.get(account.id, 'INBOX'));
      if (!box) return [];
      const ids: string[] = [];
      for (const m of await store.messages.list(box.id)) {
        const text = (await store.messages.content(box.id, m.uid)).toString('latin1');
        ids.push(/Message-ID: <([^>]+)>/i.exec(text)?.[1] ?? '?');
      }
      return ids;
    } finally {
      await store.close();
    }
  }

  test('PostgreSQL stopped: every protocol answers a temporary error, and service resumes by itself', { timeout: 60_000 }, async (t) => {
    if (!pgServer) return t.skip(skipped);
    const first = await attempt(ports.smtp, 'before-1');
    assert.equal(first.code, 250, `baseline: ${first.code} ${first.text}`);
    accepted.push('before-1@test');

    // a session that started while the database was up, cut off in the middle
    const open = await TestSmtpClient.open(ports.smtp);
    await open.command('EHLO test.client', 250);
    await open.command('MAIL FROM:<bob@remote.test>', 250);

    await pgServer.stop('fast');
    const t0 = Date.now();

    const rcpt = await open.command(`RCPT TO:<${USER}>`);
    let final: Reply = rcpt;
    if (rcpt.code === 250) {
      await open.command('DATA', 354);
      final = await open.command('Subject: mid\r\n\r\nmid\r\n.');
    }
    open.close();
    assert.equal(final.code, 451, `open session: ${final.code} ${final.text}`);
    assert.match(final.text, /^4\.3\.0 /);

    const smtp = await attempt(ports.smtp, 'down-1');
    assert.equal(smtp.code, 451, `SMTP while down: ${smtp.code} ${smtp.text}`);
    assert.match(smtp.text, /^4\.3\.0 /);

    const lmtp = await attempt(ports.lmtp, 'down-lmtp', true);
    assert.ok(temporary(lmtp), `LMTP while down: ${lmtp.code} ${lmtp.text}`);

    const imap = await LineClient.open(ports.imap);
    await imap.until(/^\* (OK|BYE)/);
    const login = await imap.command(`a1 LOGIN ${USER} ${PASSWORD}`, /^a1 /);
    imap.close();
    assert.match(login, /^a1 NO \[UNAVAILABLE\]/, `IMAP while down: ${login}`);

    const pop = await LineClient.open(ports.pop3);
    await pop.until(/^[+-]/);
    await pop.command(`USER ${USER}`, /^[+-]/);
    const pass = await pop.command(`PASS ${PASSWORD}`, /^[+-]/);
    pop.close();
    assert.match(pass, /^-ERR \[SYS\/TEMP\]/, `POP3 while down: ${pass}`);
    t.diagnostic(`all four protocols answered temporary errors within ${Date.now() - t0} ms of the stop`);

    await pgServer.start();
    const back = Date.now();
    let resumed: Reply | null = null;
    for (let i = 0; i < 40 && Date.now() - back < 20_000; i++) {
      const r = await attempt(ports.smtp, `after-${i}`);
      if (r.code === 250) {
        accepted.push(`after-${i}@test`);
        resumed = r;
        break;
      }
      assert.ok(temporary(r), `while coming back, only 4xx: ${r.code} ${r.text}`);
      await sleep(250);
    }
    assert.ok(resumed, 'SMTP accepts mail again');
    t.diagnostic(`SMTP accepted mail again ${Date.now() - back} ms after PostgreSQL was started`);

    const imap2 = await LineClient.open(ports.imap);
    await imap2.until(/^\* OK/);
    assert.match(await imap2.command(`a1 LOGIN ${USER} ${PASSWORD}`, /^a1 /), /^a1 OK/);
    imap2.close();
    const pop2 = await LineClient.open(ports.pop3);
    await pop2.until(/^\+OK/);
    await pop2.command(`USER ${USER}`, /^[+-]/);
    assert.match(await pop2.command(`PASS ${PASSWORD}`, /^[+-]/), /^\+OK/);
    pop2.command('QUIT', /^[+-]/).catch(() => undefined);
    pop2.close();

    // every 250 in the mailbox once, nothing else
    const deadline = Date.now() + 20_000;
    let ids = await inbox();
    while (ids.length < accepted.length && Date.now() < deadline) {
      await sleep(250);
      ids = await inbox();
    }
    if (ids.length !== accepted.length) t.diagnostic(output.split('\n').filter((l) => /before-1|status=|error|warn/i.test(l)).slice(-30).join('\n'));
    assert.deepEqual([...ids].sort(), [...accepted].sort());
  });

  test('PostgreSQL read-only: SMTP 451 4.3.0, LMTP 4xx, IMAP writes NO [UNAVAILABLE]; writable again: accepted', { timeout: 60_000 }, async (t) => {
    if (!pgServer) return t.skip(skipped);
    await pgServer.setReadOnly(true);
    try {
      const smtp = await attempt(ports.smtp, 'ro-1');
      assert.equal(smtp.code, 451, `SMTP on a read-only database: ${smtp.code} ${smtp.text}`);
      assert.match(smtp.text, /^4\.3\.0 /);
      const lmtp = await attempt(ports.lmtp, 'ro-lmtp', true);
      assert.ok(temporary(lmtp), `LMTP on a read-only database: ${lmtp.code} ${lmtp.text}`);

      const imap = await LineClient.open(ports.imap);
      await imap.until(/^\* OK/);
      assert.match(await imap.command(`a1 LOGIN ${USER} ${PASSWORD}`, /^a1 /), /^a1 OK/, 'reading still works');
      assert.match(await imap.command('a2 SELECT INBOX', /^a2 /), /^a2 OK/);
      const store = await imap.command('a3 STORE 1 +FLAGS (\\Flagged)', /^a3 /);
      imap.close();
      assert.match(store, /^a3 NO \[UNAVAILABLE\]/, `IMAP write on a read-only database: ${store}`);
    } finally {
      await pgServer.setReadOnly(false);
    }
    let ok: Reply | null = null;
    for (let i = 0; i < 20 && !ok; i++) {
      const r = await attempt(ports.smtp, `rw-${i}`);
      if (r.code === 250) {
        accepted.push(`rw-${i}@test`);
        ok = r;
      } else {
        assert.ok(temporary(r), `${r.code} ${r.text}`);
        await sleep(250);
      }
    }
    assert.ok(ok, 'accepted again once writable');
  });
});

describe('a connection string with several hosts and target_session_attrs=read-write', { timeout: 120_000 }, () => {
  let a: PrivatePg | null = null;
  let b: PrivatePg | null = null;
  let skipped = '';
  before(async () => {
    const [sa, sb] = await Promise.all([startPrivatePg(), startPrivatePg()]);
    if ('skipped' in sa || 'skipped' in sb) {
      skipped = 'skipped' in sa ? sa.skipped : (sb as { skipped: string }).skipped;
      if (!('skipped' in sa)) await sa.destroy();
      if (!('skipped' in sb)) await sb.destroy();
      return;
    }
    a = sa;
    b = sb;
  });
  after(async () => {
    await Promise.all([a?.destroy(), b?.destroy()]);
  });

  test('skips a dead host and a read-only one, then follows the "promoted" server when the primary dies', { timeout: 60_000 }, async (t) => {
    if (!a || !b) return t.skip(skipped);
    const dead = await freePort();
    for (const s of [a, b]) {
      await s.sql('CREATE DATABASE cartero');
      const store = await openStore({ backend: 'postgres', url: s.url('cartero') });
      await store.close();
    }
    await a.setReadOnly(true); // a stands in for a standby
    const url = `postgres://postgres@127.0.0.1:${dead},127.0.0.1:${a.port},127.0.0.1:${b.port}/cartero?target_session_attrs=read-write`;
    const store = await openStore({ backend: 'postgres', url, pool_size: 2 });
    try {
      const msg = (n: number) => ({ sender: 's@x.test', recipients: [{ address: 'r@x.test' }], content: Buffer.from(`m${n}`) });
      await store.queue.commit(msg(1), Date.now());
      await store.ping();
      const count = async (s: PrivatePg) => Number((await s.sql('SELECT count(*) AS n FROM queue_entries', 'cartero'))[0]?.n);
      assert.equal(await count(b), 1, 'written to the writable server');
      assert.equal(await count(a), 0);
      const viaB = await store.cluster.database();
      assert.equal(viaB?.server, `127.0.0.1:${b.port}`);

      // failover: the primary (b) dies, the standby (a) is promoted
      await b.stop('immediate');
      await a.setReadOnly(false);
      const t0 = Date.now();
      let done = false;
      let failures = 0;
      for (let i = 0; i < 40 && !done && Date.now() - t0 < 20_000; i++) {
        try {
          await store.queue.commit(msg(2), Date.now());
          done = true;
        } catch (err) {
          failures++;
          assert.equal((err as { kind?: string }).kind, 'unavailable', String(err));
          await sleep(100);
        }
      }
      assert.ok(done, 'commits reach the promoted server');
      t.diagnostic(`writes resumed on the promoted server ${Date.now() - t0} ms after the switch (${failures} unavailable answers)`);
      assert.equal(await count(a), 1);
      assert.equal((await store.cluster.database())?.server, `127.0.0.1:${a.port}`);
      const locks = await store.cluster.openJobLocks('node-x');
      assert.equal(await locks.tryAcquire('blob-gc', Date.now()), true, 'lock sessions follow too');
      await locks.close();

      // every server read-only (or gone): unavailable, never a write to a standby
      await a.setReadOnly(true);
      await assert.rejects(store.queue.commit(msg(3), Date.now()), (err: unknown) => (err as { kind?: string }).kind === 'unavailable');
      await assert.rejects(store.queue.commit(msg(4), Date.now()), (err: unknown) => (err as { kind?: string }).kind === 'unavailable' && /no writable server/.test(String(err)));
      assert.equal(await count(a), 1);
    } finally {
      await store.close();
    }
  });
});
