/*
 * The IMAP server over TCP with a raw client, on both store backends: byte-level checks of the state
 * machine, concurrency between sessions, and every bad input the issue lists.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient, message, startImap, type Backend, type ImapEnv } from './env.js';

for (const backend of ['embedded', 'postgres'] as Backend[]) {
  describe(`imap protocol (${backend})`, () => {
    let env: ImapEnv | null = null;
    let inboxId = 0;
    const stored: Buffer[] = [];
    before(async () => {
      env = await startImap(backend, { limits: { appendLimit: 2000, maxLiteral: 1000, maxCommandLine: 4096, maxAuthFailures: 3 } });
      if (!env) return;
      const a = await env.account('alice@example.test', 'secret');
      await env.account('bob@example.test', 'hunter2');
      inboxId = (await env.store.mailboxes.get(a.id, 'INBOX'))!.id;
      for (let i = 1; i <= 3; i++) {
        const m = message(`msg ${i}`, `Body number ${i}\r\n`);
        stored.push(m);
        await env.store.messages.append(inboxId, { content: m, flags: i === 1 ? ['\\Seen'] : [] }, Date.UTC(2024, 0, i));
      }
    });
    after(async () => env?.close());

    async function login(): Promise<RawClient> {
      const c = await RawClient.connect(env!.port);
      assert.match(await c.cmd('l', 'LOGIN alice@example.test secret'), /^l OK /m);
      return c;
    }

    test('greeting, capability, login, select, fetch bytes, logout', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      const sel = await c.cmd('s', 'SELECT INBOX');
      assert.match(sel, /^\* 3 EXISTS\r\n/m);
      assert.match(sel, /^s OK \[READ-WRITE\]/m);
      const f = await c.cmd('f', 'FETCH 2 (UID RFC822.SIZE BODY.PEEK[])');
      const m2 = stored[1]!;
      assert.ok(f.startsWith(`* 2 FETCH (UID 2 RFC822.SIZE ${m2.length} BODY[] {${m2.length}}\r\n${m2.toString('latin1')})\r\n`), f);
      const flags = await c.cmd('g', 'FETCH 1:* (FLAGS)');
      assert.match(flags, /^\* 1 FETCH \(FLAGS \(\\Seen\)\)\r\n\* 2 FETCH \(FLAGS \(\)\)/m);
      assert.match(await c.cmd('z', 'LOGOUT'), /^\* BYE/m);
      await c.closedBy();
    });

    test('search, store, copy with COPYUID, expunge', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      await c.cmd('s', 'SELECT INBOX');
      assert.match(await c.cmd('a', 'SEARCH UNSEEN'), /^\* SEARCH 2 3\r\n/m);
      assert.match(await c.cmd('b', 'UID SEARCH RETURN (MIN MAX COUNT ALL) BODY "number 3"'), /^\* ESEARCH \(TAG "b"\) UID MIN 3 MAX 3 ALL 3 COUNT 1\r\n/m);
      assert.match(await c.cmd('b2', 'SEARCH CHARSET KOI8-R ALL'), /^b2 NO \[BADCHARSET/m);
      assert.match(await c.cmd('c', 'STORE 2 +FLAGS (\\Flagged $Work)'), /^\* 2 FETCH \(FLAGS \(.*\\Flagged.*\)\)/m);
      assert.match(await c.cmd('d', 'UID COPY 2:3 Archive'), /^d OK \[COPYUID \d+ 2:3 1:2\]/m);
      assert.match(await c.cmd('e', 'COPY 1 Nowhere'), /^e NO \[TRYCREATE\]/m);
      await c.cmd('f', 'STORE 3 +FLAGS.SILENT (\\Deleted)');
      const ex = await c.cmd('g', 'EXPUNGE');
      assert.match(ex, /^\* 3 EXPUNGE\r\ng OK/m);
      await c.cmd('z', 'LOGOUT');
    });

    test('another session sees EXISTS, FETCH FLAGS and EXPUNGE; IDLE hears new mail within 1 s', async (t) => {
      if (!env) return t.skip('no backend');
      const a = await login();
      const b = await login();
      await a.cmd('s', 'SELECT Archive');
      await b.cmd('s', 'SELECT Archive');
      a.write('i IDLE\r\n');
      await a.until(/^\+ idling\r\n/m);
      const started = Date.now();
      await env.store.messages.append((await env.store.mailboxes.get((await env.store.directory.getAccount('alice@example.test'))!.id, 'Archive'))!.id, { content: message('late', 'x\r\n') }, Date.now());
      await a.until(/^\* 3 EXISTS\r\n/m, 3000);
      assert.ok(Date.now() - started < 1500, `IDLE heard new mail after ${Date.now() - started} ms`);
      await b.cmd('b1', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
      await a.until(/^\* 1 FETCH \(UID 1 FLAGS \(.*\\Deleted.*\)\)\r\n/m, 3000);
      // FETCH must not carry EXPUNGE, NOOP must
      await b.cmd('b2', 'EXPUNGE');
      await a.until(/^\* 1 EXPUNGE\r\n/m, 3000);
      a.write('DONE\r\n');
      await a.until(/^i OK/m);
      const f = await b.cmd('b3', 'FETCH 1:* (UID)');
      assert.doesNotMatch(f, /EXPUNGE/);
      await a.cmd('z', 'LOGOUT');
      await b.cmd('z', 'LOGOUT');
    });

    test('FETCH does not announce expunges; NOOP does', async (t) => {
      if (!env) return t.skip('no backend');
      const a = await login();
      const b = await login();
      await a.cmd('c', 'CREATE Work/Sub');
      await a.cmd('ap', 'APPEND Work/Sub (\\Deleted) {5+}\r\nHi\r\n\r\n');
      await a.cmd('s', 'SELECT Work/Sub');
      await b.cmd('s', 'SELECT Work/Sub');
      await b.cmd('x', 'EXPUNGE');
      await new Promise((r) => setTimeout(r, 300));
      const f = await a.cmd('f', 'FETCH 1 (FLAGS)');
      assert.doesNotMatch(f, /EXPUNGE/);
      assert.match(await a.cmd('n', 'NOOP'), /^\* 1 EXPUNGE\r\n/m);
      await a.cmd('z', 'LOGOUT');
      await b.cmd('z', 'LOGOUT');
    });

    test('APPEND with flags and date returns APPENDUID; the bytes are stored as sent', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      const m = message('appended', 'Hello\r\n');
      c.write(`a APPEND Drafts (\\Draft) "05-Mar-2024 09:04:05 +0100" {${m.length}}\r\n`);
      await c.until(/^\+ /m);
      c.write(Buffer.concat([m, Buffer.from('\r\n')]));
      const r = await c.until(/^a (OK|NO|BAD).*\r\n/m);
      const uid = Number(/APPENDUID \d+ (\d+)/.exec(r)![1]);
      const drafts = (await env.store.mailboxes.get((await env.store.directory.getAccount('alice@example.test'))!.id, 'Drafts'))!;
      assert.deepEqual(await env.store.messages.content(drafts.id, uid), m);
      const meta = (await env.store.messages.list(drafts.id, [{ from: uid, to: uid }]))[0]!;
      assert.deepEqual(meta.flags, ['\\Draft']);
      assert.equal(meta.internalDate, Date.UTC(2024, 2, 5, 8, 4, 5));
      await c.cmd('z', 'LOGOUT');
    });

    test('LIST, STATUS, CREATE/RENAME/DELETE, NAMESPACE, QUOTA, ENABLE, ID', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      assert.match(await c.cmd('a', 'LIST "" ""'), /^\* LIST \(\\Noselect\) "\/" ""\r\n/m);
      assert.match(await c.cmd('b', 'CREATE "Projekt Entw&APw-rfe" (USE (\\Archive))'), /^b OK/m);
      const l = await c.cmd('c', 'LIST "" "Projekt*" RETURN (STATUS (MESSAGES UIDNEXT))');
      assert.match(l, /^\* LIST \(\\HasNoChildren \\Archive\) "\/" "Projekt Entw&APw-rfe"\r\n\* STATUS "Projekt Entw&APw-rfe" \(MESSAGES 0 UIDNEXT 1\)\r\n/m);
      assert.match(await c.cmd('d', 'RENAME "Projekt Entw&APw-rfe" Old/Done'), /^d OK/m);
      assert.match(await c.cmd('e', 'LIST "" "Old/%"'), /^\* LIST \(\\HasNoChildren \\Archive\) "\/" Old\/Done\r\n/m);
      assert.match(await c.cmd('e2', 'LIST (SPECIAL-USE) "" "*"'), /^\* LIST \(\\HasNoChildren \\Sent\) "\/" Sent\r\n/m);
      assert.match(await c.cmd('f', 'DELETE Old/Done'), /^f OK/m);
      assert.match(await c.cmd('g', 'STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)'), /^\* STATUS INBOX \(MESSAGES \d+ UIDNEXT \d+ UNSEEN \d+ SIZE \d+\)/m);
      assert.match(await c.cmd('h', 'NAMESPACE'), /^\* NAMESPACE \(\(\"\" "\/"\)\) NIL NIL\r\n/m);
      assert.match(await c.cmd('i', 'GETQUOTAROOT INBOX'), /^\* QUOTAROOT INBOX ""\r\n\* QUOTA "" \(/m);
      assert.match(await c.cmd('j', 'ENABLE CONDSTORE UTF8=ACCEPT X-UNKNOWN'), /^\* ENABLED CONDSTORE UTF8=ACCEPT\r\n/m);
      assert.match(await c.cmd('k', 'ID ("name" "test")'), /^\* ID \(/m);
      assert.match(await c.cmd('l', 'DELETE INBOX'), /^l NO/m);
      await c.cmd('z', 'LOGOUT');
    });

    test('bad input: unknown command, wrong state, bad tag, bad arguments, bad sets', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await RawClient.connect(env.port);
      assert.match(await c.cmd('a', 'FROB'), /^a BAD Unknown command/m);
      assert.match(await c.cmd('b', 'SELECT INBOX'), /^b BAD SELECT not allowed before login/m);
      c.write('+bad NOOP\r\n');
      assert.match(await c.until(/^\* BAD .*\r\n/m), /Invalid tag/);
      await c.cmd('l', 'LOGIN alice@example.test secret');
      assert.match(await c.cmd('c', 'FETCH 1 FLAGS'), /^c BAD FETCH not allowed without a selected mailbox/m);
      await c.cmd('s', 'SELECT INBOX');
      assert.match(await c.cmd('d', 'FETCH 0 FLAGS'), /^d BAD Invalid sequence number/m);
      assert.match(await c.cmd('e', 'FETCH *:*:* FLAGS'), /^e BAD/m);
      assert.match(await c.cmd('f', 'FETCH 99 FLAGS'), /^f BAD Invalid message sequence number/m);
      assert.match(await c.cmd('g', 'FETCH 1 (FLAGS'), /^g BAD Unbalanced parentheses/m);
      assert.match(await c.cmd('h', 'LOGIN x "unterminated'), /^h BAD/m);
      assert.match(await c.cmd('i', 'CREATE "a/../b"'), /^i BAD Invalid hierarchy level/m);
      assert.match(await c.cmd('j', 'CREATE "a\\"b'), /^j BAD/m);
      c.write('k CREATE {3}\r\n');
      await c.until(/^\+ /m);
      c.write('a\x01b\r\n');
      assert.match(await c.until(/^k .*\r\n/m), /^k BAD (Control character|Mailbox name is not modified UTF-7)/m);
      assert.match(await c.cmd('m', 'SELECT "Other Users/bob/INBOX"'), /^m NO \[NONEXISTENT\]/m);
      assert.match(await c.cmd('n', 'STATUS bob@example.test/INBOX (MESSAGES)'), /^n NO/m);
      await c.cmd('z', 'LOGOUT');
    });

    test('bad input: 1 MB line, huge literals, literal over APPENDLIMIT, missing CRLF after literal', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      c.write(`big NOOP ${'x'.repeat(1024 * 1024)}\r\n`);
      assert.match(await c.until(/^big BAD .*\r\n/m), /too long/);
      assert.match(await c.cmd('ok', 'NOOP'), /^ok OK/m);
      c.write('a1 APPEND INBOX {8589934592}\r\n');
      assert.match(await c.until(/^a1 .*\r\n/m), /^a1 NO \[TOOBIG\]/m);
      c.write('a2 APPEND INBOX {2001}\r\n');
      assert.match(await c.until(/^a2 .*\r\n/m), /^a2 NO \[TOOBIG\]/m);
      c.write('a3 LOGIN {1001}\r\n');
      assert.match(await c.until(/^a3 .*\r\n/m), /^a3 BAD Literal too big/m);
      c.write('a4 APPEND INBOX {5+}\r\nHelloX\r\n');
      assert.match(await c.until(/^a4 .*\r\n/m), /^a4 BAD/m);
      assert.match(await c.cmd('ok2', 'NOOP'), /^ok2 OK/m);
      c.write('a5 APPEND INBOX {3000+}\r\n');
      assert.match(await c.until(/^a5 .*\r\n/m), /^a5 NO \[TOOBIG\]/m);
      await c.closedBy();
    });

    test('a client that disconnects mid-APPEND appends nothing', async (t) => {
      if (!env) return t.skip('no backend');
      const before = (await env.store.messages.list(inboxId)).length;
      const c = await login();
      c.write('a APPEND INBOX {100+}\r\nFrom: x\r\n\r\nhalf');
      await new Promise((r) => setTimeout(r, 200));
      c.end();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await env.store.messages.list(inboxId)).length, before);
    });

    test('a flood of pipelined commands is answered in order', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await login();
      let burst = '';
      for (let i = 0; i < 500; i++) burst += `p${i} NOOP\r\n`;
      c.write(burst);
      const text = await c.until(/^p499 OK.*\r\n/m, 10_000);
      const tags = [...text.matchAll(/^(p\d+) OK/gm)].map((m) => m[1]);
      assert.equal(tags.length, 500);
      assert.deepEqual(tags, Array.from({ length: 500 }, (_, i) => `p${i}`));
      await c.cmd('z', 'LOGOUT');
    });

    test('login failures: delay, then lock-out; plaintext login refused off loopback is advertised', async (t) => {
      if (!env) return t.skip('no backend');
      const c = await RawClient.connect(env.port);
      const started = Date.now();
      assert.match(await c.cmd('a', 'LOGIN alice@example.test wrong'), /^a NO \[AUTHENTICATIONFAILED\]/m);
      assert.ok(Date.now() - started >= 9);
      const p = Buffer.from('\0alice@example.test\0wrong').toString('base64');
      assert.match(await c.cmd('b', `AUTHENTICATE PLAIN ${p}`), /^b NO \[AUTHENTICATIONFAILED\]/m);
      const last = await c.cmd('c', 'LOGIN nobody@example.test x');
      assert.match(last, /^\* BYE Too many failed logins/m);
      await c.closedBy();
      const d = await RawClient.connect(env.port);
      assert.match(await d.cmd('d', 'LOGIN bob@example.test hunter2'), /^d NO \[UNAVAILABLE\]/m);
      d.end();
    });
  });
}
