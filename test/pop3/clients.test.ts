/*
 * Real POP3 clients against the server on loopback, on both store backends: Python poplib (USER/PASS,
 * AUTH PLAIN, STLS, implicit TLS, several sessions at once, [IN-USE]) and curl (pop3://, STLS, pop3s://).
 * Every retrieved message is compared byte for byte with what was appended to the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Account, Store } from '../../src/store/index.js';
import { curl, poplib, startTestServer, type PoplibStep, type TestServer } from './env.js';
import { addAccount, deliver, inboxOf, openEmbedded, openPostgres, PASSWORD, sampleMessage, type TestStore } from './fixture.js';

const ok = (r: { ok?: unknown; error?: string } | undefined): unknown => {
  assert.ok(r && !('error' in r), `step failed: ${r?.error}`);
  return r.ok;
};
const bytes = (b64: unknown): Buffer => Buffer.from(b64 as string, 'base64');

for (const backend of ['embedded', 'postgres'] as const) {
  describe(`POP3 clients on the ${backend} store`, () => {
    let ts: TestStore | null = null;
    let skipped = '';
    let env: TestServer;
    let store: Store;
    let n = 0;

    before(async () => {
      const opened = backend === 'embedded' ? await openEmbedded() : await openPostgres();
      if ('skipped' in opened) {
        skipped = opened.skipped;
        console.log(`# POP3 ${backend} half skipped: ${skipped}`);
        return;
      }
      ts = opened;
      store = opened.store;
      env = await startTestServer(opened, { tls: true });
    });

    after(async () => {
      if (!ts) return;
      await env.close();
      await ts.cleanup();
    });

    async function mailbox(count: number): Promise<{ account: Account; messages: Buffer[]; uids: number[] }> {
      const account = await addAccount(store, `${backend}${++n}@example.test`);
      const messages = Array.from({ length: count }, (_, i) => sampleMessage(i + 1, i * 3));
      return { account, messages, uids: await deliver(store, account, messages) };
    }

    const skip = (t: TestContext): boolean => {
      if (skipped) t.skip(skipped);
      return skipped !== '';
    };

    test('poplib USER/PASS: CAPA, STAT, LIST, UIDL, RETR byte for byte, TOP, DELE + QUIT, UIDL stable afterwards', async (t) => {
      if (skip(t)) return;
      const { account, messages, uids } = await mailbox(4);
      const inbox = await store.mailboxes.get(account.id, 'INBOX');
      const steps: PoplibStep[] = [[0, 'connect'], [0, 'capa'], [0, 'user'], [0, 'pass'], [0, 'stat'], [0, 'list'], [0, 'uidl']];
      for (let i = 1; i <= 4; i++) steps.push([0, 'retr', i]);
      steps.push([0, 'top', 2, 1], [0, 'dele', 1], [0, 'dele', 3], [0, 'quit']);
      const r = await poplib({ port: env.port, user: account.address, password: PASSWORD, steps });
      assert.match(ok(r[0]) as string, /^\+OK pop\.example\.test Cartero POP3 server ready/);
      assert.deepEqual(ok(r[1]), ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'STLS', 'TOP', 'UIDL', 'USER']);
      assert.deepEqual(ok(r[4]), [4, messages.reduce((a, m) => a + m.length, 0)]);
      assert.deepEqual(ok(r[5]), messages.map((m, i) => `${i + 1} ${m.length}`));
      assert.deepEqual(ok(r[6]), uids.map((uid, i) => `${i + 1} ${inbox!.uidValidity}.${uid}`));
      for (let i = 0; i < 4; i++) assert.ok(bytes(ok(r[7 + i])).equals(messages[i]!), `message ${i + 1} byte for byte`);
      const head = messages[1]!.toString().split('\r\n\r\n')[0]!;
      assert.equal(bytes(ok(r[11])).toString(), `${head}\r\n\r\n.leading dot\r\n`);
      assert.match(ok(r[14]) as string, /^\+OK Logging out, 2 messages deleted, 2 left/);
      const left = await store.messages.list(await inboxOf(store, account));
      assert.deepEqual(left.map((m) => m.uid), [uids[1], uids[3]]);
      assert.ok(left.every((m) => m.flags.includes('\\Seen')));
      const again = await poplib({ port: env.port, user: account.address, password: PASSWORD, steps: [[0, 'connect'], [0, 'user'], [0, 'pass'], [0, 'uidl'], [0, 'quit']] });
      assert.deepEqual(ok(again[3]), [`1 ${inbox!.uidValidity}.${uids[1]}`, `2 ${inbox!.uidValidity}.${uids[3]}`]);
    });

    test('poplib: several sessions at once on different maildrops, and [IN-USE] on the same one', async (t) => {
      if (skip(t)) return;
      const boxes = await Promise.all([mailbox(3), mailbox(3), mailbox(3), mailbox(3)]);
      const runs = boxes.map(({ account }) =>
        poplib({ port: env.port, user: account.address, password: PASSWORD, steps: [[0, 'connect'], [0, 'auth_plain'], [0, 'retr', 1], [0, 'retr', 2], [0, 'retr', 3], [0, 'dele', 2], [0, 'quit']] }),
      );
      const results = await Promise.all(runs);
      for (const [k, r] of results.entries()) {
        assert.match(ok(r[1]) as string, /^\+OK Logged in, 3 messages/);
        for (let i = 0; i < 3; i++) assert.ok(bytes(ok(r[2 + i])).equals(boxes[k]!.messages[i]!));
        const left = await store.messages.list(await inboxOf(store, boxes[k]!.account));
        assert.deepEqual(left.map((m) => m.uid), [boxes[k]!.uids[0], boxes[k]!.uids[2]]);
      }
      const { account } = boxes[0]!;
      const r = await poplib({
        port: env.port,
        user: account.address,
        password: PASSWORD,
        steps: [[0, 'connect'], [0, 'user'], [0, 'pass'], [1, 'connect'], [1, 'user'], [1, 'pass'], [0, 'quit'], [1, 'user'], [1, 'pass'], [1, 'stat'], [1, 'quit']],
      });
      assert.match(ok(r[2]) as string, /^\+OK Logged in/);
      assert.match(r[5]?.error ?? '', /-ERR \[IN-USE\] Maildrop is locked by another POP3 session/);
      assert.match(ok(r[8]) as string, /^\+OK Logged in, 2 messages/);
      assert.equal((ok(r[9]) as number[])[0], 2);
    });

    test('poplib over TLS: STLS then login, and implicit TLS (pop3s)', async (t) => {
      if (skip(t)) return;
      const { account, messages } = await mailbox(2);
      const r = await poplib({
        port: env.port,
        user: account.address,
        password: PASSWORD,
        steps: [[0, 'connect'], [0, 'stls'], [0, 'capa'], [0, 'user'], [0, 'pass'], [0, 'retr', 2], [0, 'quit'], [1, 'connect_ssl', env.tlsPort], [1, 'user'], [1, 'pass'], [1, 'retr', 1], [1, 'quit']],
      });
      assert.match(ok(r[1]) as string, /^\+OK Begin TLS negotiation/);
      assert.ok(!(ok(r[2]) as string[]).includes('STLS'), 'no STLS once TLS is active');
      assert.ok(bytes(ok(r[5])).equals(messages[1]!));
      assert.match(ok(r[7]) as string, /^\+OK pop\.example\.test/);
      assert.ok(bytes(ok(r[10])).equals(messages[0]!));
      assert.ok(env.logs.some((l) => l['msg'] === 'login' && l['user'] === account.address && l['tls'] === true));
    });

    test('curl pop3://: RETR byte for byte (dot-stuffed lines), LIST, STLS with --ssl-reqd, pop3s://', async (t) => {
      if (skip(t)) return;
      const { account, messages } = await mailbox(3);
      const user = encodeURIComponent(account.address);
      const pass = encodeURIComponent(PASSWORD);
      for (let i = 1; i <= 3; i++) {
        const r = await curl([`pop3://${user}:${pass}@127.0.0.1:${env.port}/${i}`]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.equals(messages[i - 1]!), `curl message ${i} byte for byte`);
      }
      const listing = await curl([`pop3://${user}:${pass}@127.0.0.1:${env.port}/`]);
      assert.equal(listing.stdout.toString(), messages.map((m, i) => `${i + 1} ${m.length}\r\n`).join(''));
      const stls = await curl(['--ssl-reqd', '-k', `pop3://${user}:${pass}@127.0.0.1:${env.port}/2`]);
      assert.equal(stls.code, 0, stls.stderr);
      assert.ok(stls.stdout.equals(messages[1]!));
      const implicit = await curl(['-k', `pop3s://${user}:${pass}@127.0.0.1:${env.tlsPort}/3`]);
      assert.equal(implicit.code, 0, implicit.stderr);
      assert.ok(implicit.stdout.equals(messages[2]!));
      const wrong = await curl([`pop3://${user}:nope@127.0.0.1:${env.port}/1`]);
      assert.notEqual(wrong.code, 0);
      assert.equal(wrong.stdout.length, 0);
    });

    test('a large message with dot lines streams intact (curl and poplib)', async (t) => {
      if (skip(t)) return;
      const account = await addAccount(store, `${backend}-big@example.test`);
      const line = (k: number): string => (k % 7 === 0 ? `.${'d'.repeat(k % 90)}` : `${k} ${'z'.repeat(70)}`);
      const lines: string[] = [];
      let size = 0;
      for (let k = 0; size < 6 * 1024 * 1024; k++) {
        lines.push(line(k));
        size += 80;
      }
      const big = Buffer.from(`Subject: big\r\n\r\n${lines.join('\r\n')}\r\n.\r\n`);
      await deliver(store, account, [big]);
      const r = await curl([`pop3://${encodeURIComponent(account.address)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${env.port}/1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, big.length);
      assert.ok(r.stdout.equals(big));
      const p = await poplib({ port: env.port, user: account.address, password: PASSWORD, steps: [[0, 'connect'], [0, 'user'], [0, 'pass'], [0, 'retr', 1], [0, 'quit']] });
      assert.ok(bytes(ok(p[3])).equals(big));
    });
  });
}
