/*
 * FETCH of bodies reads the next batch while it writes this one. A store failure in a batch read ahead
 * must end the command with NO (the session and the process carry on), never as an unhandled rejection;
 * a batch read ahead that nobody awaits is dropped quietly. Embedded store, real sockets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { createImapServer, type ImapServer } from '../../src/imap/server.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { openStore, StoreError, type Store } from '../../src/store/index.js';
import { testConfig } from '../smtp/env.js';
import { message } from './env.js';

let dir = '';
let store: Store;
let server: ImapServer;
let listeners: Listeners;
/** contents() calls left before the store starts failing them (Infinity: never) */
let failAfter = Infinity;
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => void unhandled.push(err);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  dir = mkdtempSync(join(tmpdir(), 'cartero-imap-ahead-'));
  store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
  await store.directory.addDomain('example.test');
  const account = await provisionAccount(store, 'ahead@example.test', await hashPassword('secret'));
  const inbox = (await store.mailboxes.get(account.id, 'INBOX'))!;
  // 64 KB each, batches of 4 MB: with the client not reading, the socket's buffers fill during the second
  // batch and the server waits to write, while the third batch is read ahead
  const body = `${'x'.repeat(78)}\r\n`.repeat(800);
  for (let i = 1; i <= 300; i++) await store.messages.append(inbox.id, { content: message(`ahead ${i}`, body) }, Date.UTC(2024, 0, 1));
  // the server sees a store whose contents() fails after `failAfter` calls
  const contents = store.messages.contents.bind(store.messages);
  const messages = new Proxy(store.messages, {
    get: (target, name, receiver) =>
      name === 'contents'
        ? async (mailboxId: number, uids: readonly number[]) => {
            if (failAfter-- <= 0) {
              throw new StoreError('unavailable', 'store went away (test)');
            }
            return contents(mailboxId, uids);
          }
        : Reflect.get(target, name, receiver),
  });
  const wrapped = new Proxy(store, { get: (target, name, receiver) => (name === 'messages' ? messages : Reflect.get(target, name, receiver)) });
  server = createImapServer({ config: testConfig(), store: wrapped, logger: pino({ level: 'silent' }), limits: { authFailureDelayMs: 10 } });
  listeners = await startListeners([{ proto: 'imap', address: '127.0.0.1', port: 0, key: 'imap', handler: server.handler({ key: 'imap' }) }]);
});

after(async () => {
  await Promise.all([server.drain(1000), listeners.close(1000)]);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.off('unhandledRejection', onUnhandled);
});

/** Sends `commands` pipelined, reads nothing for `pauseMs` (the server must wait to write), then reads to `until`. */
function pipelined(port: number, commands: string[], pauseMs: number, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(commands.map((c) => `${c}\r\n`).join(''));
      socket.pause();
      setTimeout(() => socket.resume(), pauseMs);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timeout; got ${Buffer.concat(chunks).toString('latin1').slice(-300)}`));
    }, 10_000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('latin1');
      if (until.test(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
  });
}

test('a failing read-ahead ends the FETCH with NO; the session goes on; nothing is unhandled', async () => {
  failAfter = 2; // two batches are read, the third (read ahead) fails while the second waits for the client
  const text = await pipelined(
    listeners.bound[0]!.port,
    ['l LOGIN ahead@example.test secret', 's SELECT INBOX', 'f FETCH 1:* BODY.PEEK[]', 'g FETCH 300 (UID RFC822.SIZE)', 'z LOGOUT'],
    1000,
    /^z OK/m,
  );
  assert.match(text, /^\* 1 FETCH \(BODY\[\] \{/m, 'the first batch went out');
  assert.match(text, /^f NO \[UNAVAILABLE\]/m);
  assert.match(text, /^\* 300 FETCH \(UID 300 RFC822\.SIZE \d+\)\r\ng OK/m);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(unhandled, []);
});
