/*
 * Child of the crash test: appends messages (queue commits and mailbox appends) from several concurrent
 * loops and prints one line per acknowledged write — `Q <queue id> <sha256>` or `M <uid> <sha256>` —
 * only after the store resolved it. Stdout is a pipe, which Node writes synchronously, so every printed
 * acknowledgement reached the parent before the next write starts. It runs until it is killed.
 */
import '../../src/threadpool.js';
import { createHash, randomBytes } from 'node:crypto';
import { openStore, type StoreConfig } from '../../src/store/index.js';

const config = JSON.parse(process.argv[2] ?? '') as StoreConfig;
const mailboxId = Number(process.argv[3]);
const store = await openStore(config, { migrate: false });

function content(): Buffer {
  // mostly small messages (inline in the embedded store), sometimes a large one (a blob file)
  const size = Math.random() < 0.1 ? 150_000 + Math.floor(Math.random() * 100_000) : 500 + Math.floor(Math.random() * 8000);
  return Buffer.concat([Buffer.from(`Subject: crash ${randomBytes(6).toString('hex')}\r\n\r\n`), randomBytes(size)]);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function loop(worker: number): Promise<never> {
  for (let i = 0; ; i++) {
    const body = content();
    if (i % 2 === 0) {
      const { id } = await store.queue.commit({ sender: 'crash@example.test', recipients: [{ address: 'crash@example.test' }], content: body }, Date.now());
      process.stdout.write(`Q ${id} ${sha(body)}\n`);
    } else {
      const r = await store.messages.append(mailboxId, { content: body, idempotencyKey: `${process.pid}:${worker}:${i}`, flags: i % 3 === 0 ? ['\\Seen'] : [] }, Date.now());
      process.stdout.write(`M ${r.uid} ${sha(body)}\n`);
    }
  }
}

process.stdout.write('READY\n');
await Promise.all(Array.from({ length: 8 }, (_, w) => loop(w)));
