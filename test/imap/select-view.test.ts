/*
 * SELECT answers from the mailbox row and reads the session's view of the messages on the first command
 * that needs it. Changes made by others between the two must not shift message numbers under the
 * client: messages expunged meanwhile keep their numbers until an EXPUNGE may be sent, messages appended
 * meanwhile are announced with EXISTS, flags show their current values. Both store backends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { VIEW_CACHE_MIN_MESSAGES, viewCacheOf } from '../../src/imap/view-cache.js';
import { RawClient, message, startImap, type Backend, type ImapEnv } from './env.js';

for (const backend of ['embedded', 'postgres'] as Backend[]) {
  describe(`imap SELECT with a lazily read view (${backend})`, () => {
    let env: ImapEnv | null = null;
    let inboxId = 0;
    before(async () => {
      env = await startImap(backend, { tls: false });
      if (!env) return;
      const a = await env.account('lazy@example.test', 'secret');
      inboxId = (await env.store.mailboxes.get(a.id, 'INBOX'))!.id;
      for (let i = 1; i <= 4; i++) {
        await env.store.messages.append(inboxId, { content: message(`lazy ${i}`, `Body ${i}\r\n`), flags: i === 4 ? ['$Old'] : [] }, Date.UTC(2024, 0, i));
      }
    });
    after(async () => env?.close());

    async function login(): Promise<RawClient> {
      const c = await RawClient.connect(env!.port);
      assert.match(await c.cmd('l', 'LOGIN lazy@example.test secret'), /^l OK /m);
      return c;
    }

    test('SELECT lists the keywords in use; an expunge and an append before the first FETCH keep the numbers', async (t) => {
      if (!env) return t.skip('no backend');
      const a = await login();
      const sel = await a.cmd('s', 'SELECT INBOX');
      assert.match(sel, /^\* 4 EXISTS\r\n/m);
      assert.match(sel, /^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Old\)\r\n/m);
      assert.match(sel, /^\* OK \[UIDNEXT 5\]/m);
      // another session changes the mailbox before `a` has read its view
      const b = await login();
      await b.cmd('b0', 'SELECT INBOX');
      await b.cmd('b1', 'STORE 2 +FLAGS.SILENT (\\Deleted)');
      assert.match(await b.cmd('b2', 'EXPUNGE'), /^\* 2 EXPUNGE\r\n/m);
      assert.match(await b.cmd('b3', 'UID STORE 3 +FLAGS.SILENT (\\Flagged)'), /^b3 OK/m);
      await env.store.messages.append(inboxId, { content: message('lazy 5', 'Body 5\r\n') }, Date.UTC(2024, 0, 5));
      // FETCH may not announce the expunge: message 2 is still numbered, message 4 is still UID 4
      const f = await a.cmd('f', 'FETCH 1:* (UID FLAGS)');
      assert.doesNotMatch(f, /EXPUNGE/);
      assert.match(f, /^\* 1 FETCH \(UID 1 FLAGS \(\)\)\r\n/m);
      assert.match(f, /^\* 3 FETCH \(UID 3 FLAGS \(\\Flagged\)\)\r\n/m);
      assert.match(f, /^\* 4 FETCH \(UID 4 FLAGS \(\$Old\)\)\r\n/m);
      assert.doesNotMatch(f, /UID 5/);
      // the new message may be announced after FETCH (EXISTS is allowed there, EXPUNGE is not)
      assert.match(f, /^\* 5 EXISTS\r\n/m);
      assert.match(await a.cmd('g', 'FETCH 2 BODY.PEEK[]'), /^g OK/m);
      // NOOP may announce the expunge
      assert.match(await a.cmd('n', 'NOOP'), /^\* 2 EXPUNGE\r\nn OK/m);
      const after = await a.cmd('h', 'FETCH 1:* (UID)');
      assert.deepEqual([...after.matchAll(/UID (\d+)/g)].map((m) => Number(m[1])), [1, 3, 4, 5]);
      await a.cmd('z', 'LOGOUT');
      await b.cmd('z', 'LOGOUT');
    });

    test('FETCH of bodies over several batches (read ahead): every message, in order, byte for byte', async (t) => {
      if (!env) return t.skip('no backend');
      const account = (await env.store.directory.getAccount('lazy@example.test'))!;
      const box = await env.store.mailboxes.create(account.id, 'Many');
      const sent: Buffer[] = [];
      for (let i = 1; i <= 450; i++) {
        const m = message(`many ${i}`, `${'x'.repeat(i % 97)} body ${i}\r\n`);
        sent.push(m);
        await env.store.messages.append(box.id, { content: m }, Date.UTC(2024, 1, 1));
      }
      const a = await login();
      await a.cmd('s', 'SELECT Many');
      const f = await a.cmd('f', 'FETCH 1:* (UID BODY.PEEK[])');
      let at = 0;
      for (let i = 1; i <= 450; i++) {
        const m = sent[i - 1]!;
        const head = `* ${i} FETCH (UID ${i} BODY[] {${m.length}}\r\n`;
        const found = f.indexOf(head, at);
        assert.equal(found, at, `message ${i}`);
        at = found + head.length;
        assert.equal(f.slice(at, at + m.length), m.toString('latin1'), `bytes of ${i}`);
        at += m.length;
        assert.equal(f.slice(at, at + 3), ')\r\n');
        at += 3;
      }
      assert.match(f.slice(at), /^f OK/);
      assert.match(await a.cmd('g', 'FETCH 1:* (FLAGS)'), /^\* 450 FETCH \(FLAGS \(\)\)\r\ng OK/m, 'PEEK left \\Seen alone');
      await a.cmd('z', 'LOGOUT');
    });

    test('a large mailbox: the second session reads the shared index; a change after SELECT still shows', async (t) => {
      if (!env) return t.skip('no backend');
      const account = (await env.store.directory.getAccount('lazy@example.test'))!;
      const box = await env.store.mailboxes.create(account.id, 'Large');
      const n = VIEW_CACHE_MIN_MESSAGES + 10;
      await Promise.all(Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < n; i += 16) await env!.store.messages.append(box.id, { content: message(`large ${i}`, 'x\r\n'), flags: i % 3 === 0 ? ['\\Seen'] : [] }, Date.UTC(2024, 2, 1));
      }));
      const a = await login();
      await a.cmd('s', 'SELECT Large');
      const first = await a.cmd('f', 'FETCH 1:* (UID FLAGS)');
      assert.equal(first.match(/^\* \d+ FETCH/gm)?.length, n);
      const atSelect = (await env.store.mailboxes.getById(box.id))!.highestModseq;
      assert.ok(viewCacheOf(env.store).get(box.id, atSelect), "a's index is shared");
      const b = await login();
      assert.match(await b.cmd('s', 'SELECT Large'), new RegExp(`^\\* ${n} EXISTS`, 'm'));
      // after b's SELECT, before its first FETCH: a flag change b must hear of
      assert.match(await a.cmd('st', 'UID STORE 5 +FLAGS.SILENT (\\Flagged)'), /^st OK/m);
      const second = await b.cmd('f', 'FETCH 1:* (UID FLAGS)');
      // same numbers and UIDs as a's view (the change may follow as one more untagged FETCH)
      const pairs = (text: string) => [...new Set([...text.matchAll(/^\* (\d+) FETCH \(UID (\d+)/gm)].map((m) => `${m[1]}:${m[2]}`))];
      assert.equal(pairs(first).length, n);
      assert.deepEqual(pairs(second), pairs(first));
      const seq5 = /^\* (\d+) FETCH \(UID 5 /m.exec(first)![1];
      assert.match(second + (await b.cmd('n', 'NOOP')), new RegExp(`^\\* ${seq5} FETCH \\(UID 5 FLAGS \\([^)]*\\\\Flagged`, 'm'));
      await a.cmd('z', 'LOGOUT');
      await b.cmd('z', 'LOGOUT');
    });

    test('SELECT then LOGOUT, EXAMINE and UNSELECT never need the view; STATUS still counts', async (t) => {
      if (!env) return t.skip('no backend');
      const a = await login();
      const sel = await a.cmd('s', 'EXAMINE INBOX');
      assert.match(sel, /^s OK \[READ-ONLY\]/m);
      const exists = Number(/^\* (\d+) EXISTS/m.exec(sel)?.[1]);
      assert.match(await a.cmd('st', 'STATUS INBOX (MESSAGES UIDNEXT)'), new RegExp(`MESSAGES ${exists} UIDNEXT`));
      assert.match(await a.cmd('u', 'UNSELECT'), /^u OK/m);
      assert.match(await a.cmd('s2', 'SELECT INBOX (CONDSTORE)'), /^\* OK \[HIGHESTMODSEQ \d+\]/m);
      assert.match(await a.cmd('c', 'CLOSE'), /^c OK/m);
      await a.cmd('z', 'LOGOUT');
    });
  });
}
