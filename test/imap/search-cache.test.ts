/*
 * Header SEARCH answered from the server's shared header cache: a second search (in another session)
 * gives exactly the first one's results, messages delivered after the first search are read and found,
 * encoded words are matched decoded, and header keys combined with body keys still read the bodies.
 * On both store backends, over TCP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient, message, startImap, type Backend, type ImapEnv } from './env.js';

for (const backend of ['embedded', 'postgres'] as Backend[]) {
  describe(`imap header search cache (${backend})`, () => {
    let env: ImapEnv | null = null;
    let inboxId = 0;
    before(async () => {
      env = await startImap(backend);
      if (!env) return;
      const a = await env.account('carol@example.test', 'secret');
      inboxId = (await env.store.mailboxes.get(a.id, 'INBOX'))!.id;
      const subjects = ['Quarterly report', 'lunch?', '=?UTF-8?Q?R=C3=A9sum=C3=A9_quarterly?=', 'other'];
      for (const [i, s] of subjects.entries()) {
        await env.store.messages.append(inboxId, { content: message(s, i === 3 ? 'about the quarterly numbers\r\n' : 'hello\r\n') }, Date.UTC(2024, 0, i + 1));
      }
    });
    after(async () => env?.close());

    async function session(): Promise<RawClient> {
      const c = await RawClient.connect(env!.port);
      assert.match(await c.cmd('l', 'LOGIN carol@example.test secret'), /^l OK /m);
      assert.match(await c.cmd('s', 'SELECT INBOX'), /^s OK /m);
      return c;
    }

    test('a repeated SUBJECT search, cached, answers the same; new mail is found; mixed keys read bodies', async (t) => {
      if (!env) return t.skip('no backend');
      const a = await session();
      const first = await a.cmd('a', 'UID SEARCH SUBJECT QUARTERLY');
      assert.match(first, /^\* SEARCH 1 3\r\n/m);
      assert.match(await a.cmd('a2', 'UID SEARCH SUBJECT résumé'), /^\* SEARCH 3\r\n/m);
      const b = await session();
      assert.match(await b.cmd('b', 'UID SEARCH SUBJECT quarterly'), /^\* SEARCH 1 3\r\n/m);
      assert.match(await b.cmd('c', 'UID SEARCH NOT SUBJECT quarterly'), /^\* SEARCH 2 4\r\n/m);
      assert.match(await b.cmd('d', 'UID SEARCH OR SUBJECT lunch BODY quarterly'), /^\* SEARCH 2 4\r\n/m);
      assert.match(await b.cmd('e', 'UID SEARCH HEADER X-Missing ""'), /^\* SEARCH\r\n/m);
      assert.match(await b.cmd('f', 'UID SEARCH HEADER Subject ""'), /^\* SEARCH 1 2 3 4\r\n/m);
      await env.store.messages.append(inboxId, { content: message('late quarterly note', 'x\r\n') }, Date.now());
      assert.match(await b.cmd('g', 'NOOP'), /^\* 5 EXISTS\r\n/m);
      assert.match(await b.cmd('h', 'UID SEARCH SUBJECT quarterly'), /^\* SEARCH 1 3 5\r\n/m);
      await a.cmd('z', 'LOGOUT');
      await b.cmd('z', 'LOGOUT');
    });
  });
}
