/*
 * Real clients against the IMAP server on both store backends: imapflow (npm), Python imaplib (several
 * sessions at once on one mailbox: one IDLEs while another appends and expunges) and curl imap://.
 * Each compares the bytes it gets with what the store holds.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { message, startImap, type Backend, type ImapEnv } from './env.js';

const run = promisify(execFile);
const HERE = import.meta.dirname;

for (const backend of ['embedded', 'postgres'] as Backend[]) {
  describe(`imap clients (${backend})`, () => {
    let env: ImapEnv | null = null;
    let inboxId = 0;
    before(async () => {
      env = await startImap(backend);
      if (!env) return;
      const a = await env.account('alice@example.test', 'secret');
      inboxId = (await env.store.mailboxes.get(a.id, 'INBOX'))!.id;
      const mixed = Buffer.from(
        'From: Bob <bob@remote.test>\r\nTo: alice@example.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n' +
          'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n' +
          '--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b1--\r\n',
      );
      await env.store.messages.append(inboxId, { content: message('first', 'First body\r\n'), flags: [] }, Date.UTC(2024, 0, 1));
      await env.store.messages.append(inboxId, { content: mixed, flags: ['\\Seen'] }, Date.UTC(2024, 0, 2));
    });
    after(async () => env?.close());

    test('imapflow: list, status, fetch envelope/structure/source/binary, flags, move, search, append', async (t) => {
      if (!env) return t.skip('no backend');
      const client = new ImapFlow({ host: '127.0.0.1', port: env.port, secure: false, doSTARTTLS: false, auth: { user: 'alice@example.test', pass: 'secret' }, logger: false });
      await client.connect();
      try {
        const boxes = await client.list();
        assert.deepEqual(boxes.map((b) => b.path).sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
        assert.equal(boxes.find((b) => b.path === 'Sent')!.specialUse, '\\Sent');
        const st = await client.status('INBOX', { messages: true, unseen: true, uidNext: true });
        assert.ok(st);
        assert.equal(st.messages, 2);
        assert.equal(st.unseen, 1);
        const lock = await client.getMailboxLock('INBOX');
        try {
          const stored = await env.store.messages.list(inboxId);
          const msgs = [];
          for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, source: true, size: true })) msgs.push(m);
          assert.equal(msgs.length, 2);
          for (const m of msgs) {
            const bytes: Buffer = await env.store.messages.content(inboxId, m.uid);
            assert.deepEqual(m.source, bytes);
            assert.equal(m.size, stored.find((s) => s.uid === m.uid)!.size);
          }
          assert.equal(msgs[0]!.envelope!.subject, 'first');
          assert.equal(msgs[1]!.envelope!.subject, 'café');
          assert.equal(msgs[1]!.bodyStructure!.childNodes!.length, 2);
          const part = await client.download('2', '2', { uid: false });
          const chunks: Buffer[] = [];
          for await (const c of part.content!) chunks.push(c as Buffer);
          assert.deepEqual(Buffer.concat(chunks), Buffer.from([0, 1, 2, 3]));
          await client.messageFlagsAdd('1', ['\\Flagged']);
          const flagged = await client.search({ flagged: true });
          assert.deepEqual(flagged, [1]);
          assert.deepEqual(await client.search({ body: 'plain part' }), [2]);
          const moved = await client.messageMove('1', 'Archive');
          assert.ok(moved && moved.uidMap && moved.uidMap.size === 1);
        } finally {
          lock.release();
        }
        const appended = await client.append('Drafts', message('draft', 'Draft body\r\n'), ['\\Draft']);
        assert.ok(appended && appended.uid);
        const drafts = (await env.store.mailboxes.get((await env.store.directory.getAccount('alice@example.test'))!.id, 'Drafts'))!;
        assert.deepEqual(await env.store.messages.content(drafts.id, appended.uid!), message('draft', 'Draft body\r\n'));
      } finally {
        await client.logout();
      }
    });

    test('python imaplib: IDLE in one session hears another append and expunge; TLS session reads the bytes', async (t) => {
      if (!env) return t.skip('no backend');
      const { stdout } = await run('python3', [join(HERE, 'imaplib_client.py'), String(env.port), String(env.tlsPort), 'alice@example.test', 'secret'], { timeout: 30_000 });
      const out = JSON.parse(stdout) as Record<string, unknown>;
      assert.match(String(out.a_idle), /^\+ idling/);
      assert.match(String(out.b_append), /^\[APPENDUID \d+ \d+\]/);
      assert.ok((out.a_saw_exists as string[]).some((l) => /^\* \d+ EXISTS$/.test(l)));
      assert.ok((out.a_saw_expunge as string[]).some((l) => l === '* 1 EXPUNGE'));
      assert.match(String(out.a_done), / OK /);
      const uids = out.c_uids as number[];
      const bytes = await env.store.messages.content(inboxId, uids[uids.length - 1]!);
      assert.equal(out.c_body, bytes.toString('latin1'));
      assert.match(String(out.c_meta), /FLAGS \(\\Flagged\)/);
    });

    test('curl imap:// lists, fetches and searches', async (t) => {
      if (!env) return t.skip('no backend');
      const base = `imap://127.0.0.1:${env.port}`;
      const auth = ['--user', 'alice@example.test:secret', '--max-time', '20', '-s', '-S'];
      const list = await run('curl', [...auth, `${base}/`]);
      assert.match(list.stdout, /\* LIST \(\\HasNoChildren \\Sent\) "\/" Sent/);
      const stored = await env.store.messages.list(inboxId);
      const uid = stored[0]!.uid;
      const fetched = await run('curl', [...auth, `${base}/INBOX;UID=${uid}`], { encoding: 'buffer' });
      assert.deepEqual(fetched.stdout, await env.store.messages.content(inboxId, uid));
      const search = await run('curl', [...auth, `${base}/INBOX?SUBJECT%20caf`]);
      assert.match(search.stdout, /^\* SEARCH/m);
    });
  });
}
