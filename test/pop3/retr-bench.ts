/*
 * POP3 part of the benchmark: RETR of 2,000 messages of 8 KB over loopback on the embedded store
 * (login, then one RETR after another, each read to its terminator and checked for length), plus the
 * same RETRs pipelined in one write. Bounded in count; prints one table. Run on its own with
 * `node --import tsx test/pop3/retr-bench.ts` or from bench/run.ts via main().
 */
import { pino } from 'pino';
import { startListeners } from '../../src/net/listeners.js';
import { createPop3Server } from '../../src/pop3/server.js';
import { testConfig, rawClient } from './env.js';
import { addAccount, inboxOf, openEmbedded, PASSWORD } from './fixture.js';

const COUNT = 2000;
const SIZE = 8 * 1024;

function message(i: number): Buffer {
  const head = `From: bench@remote.test\r\nTo: pop@example.test\r\nSubject: bench ${i}\r\n\r\n`;
  const line = `${'b'.repeat(76)}\r\n`;
  return Buffer.from(head + line.repeat(Math.ceil((SIZE - head.length) / line.length))).subarray(0, SIZE - 2);
}

export async function main(): Promise<void> {
  const ts = await openEmbedded();
  const server = createPop3Server({ config: testConfig(), store: ts.store, logger: pino({ level: 'silent' }) });
  const listeners = await startListeners([{ proto: 'pop3', address: '127.0.0.1', port: 0, handler: server.handler({ key: 'bench' }) }]);
  try {
    const account = await addAccount(ts.store, 'pop@example.test');
    const inbox = await inboxOf(ts.store, account);
    const content = Buffer.concat([message(0), Buffer.from('\r\n')]);
    for (let i = 0; i < COUNT; i++) await ts.store.messages.append(inbox, { content: Buffer.concat([content.subarray(0, content.length - 12), Buffer.from(String(i).padStart(10, '0')), Buffer.from('\r\n')]) }, Date.now());
    const c = await rawClient(listeners.bound[0]!.port);
    await c.response();
    const loginStart = performance.now();
    await c.cmd(`USER ${account.address}`);
    const status = await c.cmd(`PASS ${PASSWORD}`);
    const loginMs = performance.now() - loginStart;
    if (!status.startsWith('+OK')) throw new Error(`login failed: ${status}`);
    let bytes = 0;
    const seqStart = performance.now();
    for (let i = 1; i <= COUNT; i++) bytes += (await c.multi(`RETR ${i}`)).body.length;
    const seqMs = performance.now() - seqStart;
    const pipeStart = performance.now();
    c.send(Array.from({ length: COUNT }, (_, i) => `RETR ${i + 1}\r\n`).join(''));
    for (let i = 0; i < COUNT; i++) await c.response(true, 30_000);
    const pipeMs = performance.now() - pipeStart;
    await c.cmd('QUIT');
    if (bytes !== COUNT * content.length) throw new Error(`retrieved ${bytes} bytes, expected ${COUNT * content.length}`);
    console.log('| POP3 (embedded store) | time | rate |');
    console.log('|---|---|---|');
    console.log(`| login (USER/PASS, scrypt) | ${loginMs.toFixed(0)} ms | |`);
    console.log(`| RETR ${COUNT} x 8 KB, one at a time | ${seqMs.toFixed(0)} ms | ${((COUNT / seqMs) * 1000).toFixed(0)} msg/s |`);
    console.log(`| RETR ${COUNT} x 8 KB, pipelined | ${pipeMs.toFixed(0)} ms | ${((COUNT / pipeMs) * 1000).toFixed(0)} msg/s |`);
  } finally {
    await Promise.all([server.drain(2000), listeners.close(2000)]);
    await ts.cleanup();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
