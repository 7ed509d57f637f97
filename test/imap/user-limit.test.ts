/*
 * imap.max_connections_per_user over TCP on both backends: the session past the limit gets
 * NO [LIMIT] and stays unauthenticated, other users are not affected, and a slot comes back at LOGOUT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient, startImap, type Backend, type ImapEnv } from './env.js';

for (const backend of ['embedded', 'postgres'] as Backend[]) {
  describe(`imap sessions per user (${backend})`, () => {
    let env: ImapEnv | null = null;
    before(async () => {
      env = await startImap(backend, { limits: { maxConnectionsPerUser: 2 }, tls: false });
      if (!env) return;
      await env.account('alice@example.test', 'secret');
      await env.account('bob@example.test', 'hunter2');
    });
    after(async () => env?.close());

    test('a third session of one user is refused with NO [LIMIT]; LOGOUT gives the slot back', async (t) => {
      if (!env) return t.skip('no backend');
      const login = async (user: string, password: string) => {
        const c = await RawClient.connect(env!.port);
        return { c, reply: await c.cmd('l', `LOGIN ${user} ${password}`) };
      };
      const a1 = await login('alice@example.test', 'secret');
      const a2 = await login('ALICE@example.test', 'secret');
      assert.match(a1.reply, /^l OK /m);
      assert.match(a2.reply, /^l OK /m);
      const a3 = await login('alice@example.test', 'secret');
      assert.match(a3.reply, /^l NO \[LIMIT\] /m);
      assert.match(await a3.c.cmd('s', 'SELECT INBOX'), /^s BAD /m, 'the refused session is still not authenticated');
      const b = await login('bob@example.test', 'hunter2');
      assert.match(b.reply, /^l OK /m, 'another user logs in');
      assert.match(await a1.c.cmd('z', 'LOGOUT'), /^\* BYE/m);
      await a1.c.closedBy();
      assert.match(await a3.c.cmd('l2', 'LOGIN alice@example.test secret'), /^l2 OK /m, 'the slot of the closed session is free');
      assert.ok(env.logs.some((l) => l['status'] === 'refused' && l['reason'] === 'too many sessions for the user'));
      for (const c of [a2.c, a3.c, b.c]) c.socket.destroy();
    });
  });
}
