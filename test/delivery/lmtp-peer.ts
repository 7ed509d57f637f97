/*
 * A scripted LMTP server (RFC 2033) for the LMTP client tests, listening on a Unix domain socket in a
 * temporary directory: it answers LHLO, RCPT and the per-recipient replies after the end of data as each
 * test tells it, and can hang up or go silent after a chosen number of those replies, or send one reply
 * too many. It records every command line, every write it received outside message data (to show what
 * was pipelined) and every transaction with the replies it gave.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LmtpScript {
  /** LHLO capability lines after the first; default PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES */
  capabilities?: string[];
  /** reply to LHLO instead of 250 and the capabilities */
  lhloReply?: string;
  rcpt?: (to: string) => string;
  /** the reply after the end of data for one recipient; default 250 */
  final?: (to: string, message: Buffer) => string;
  /** close the connection after this many per-recipient replies (counted over the connection) */
  dropAfterFinals?: number;
  /** stop answering after this many per-recipient replies (counted over the connection) */
  silentAfterFinals?: number;
  /** one more 250 after the per-recipient replies of each message (a broken server) */
  extraReply?: boolean;
}

export interface LmtpTransaction {
  from: string;
  to: string[];
  data: Buffer;
  /** the replies sent after the end of data, in order */
  answered: string[];
}

export interface LmtpPeer {
  path: string;
  commands: string[];
  chunks: string[];
  transactions: LmtpTransaction[];
  connections: number;
  script: LmtpScript;
  close(): Promise<void>;
}

const DEFAULT_CAPS = ['PIPELINING', 'SIZE 10000000', '8BITMIME', 'ENHANCEDSTATUSCODES'];

export async function startLmtpPeer(script: LmtpScript = {}): Promise<LmtpPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-lmtp-peer-'));
  const path = join(dir, 'lmtp.sock');
  const sockets = new Set<Socket>();
  const peer: LmtpPeer = { path, commands: [], chunks: [], transactions: [], connections: 0, script, close: async () => {} };
  const server: Server = createServer((sock) => {
    peer.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    handle(sock, peer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  peer.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      });
    });
  return peer;
}

function handle(sock: Socket, peer: LmtpPeer): void {
  const s = peer.script;
  let buf = Buffer.alloc(0);
  let inData = false;
  let tx: { from: string; to: string[] } | null = null;
  let finalsSent = 0;
  let silent = false;
  const send = (text: string) => {
    if (!silent && !sock.destroyed) sock.write(`${text}\r\n`);
  };
  send('220 lmtp.peer.test LMTP scripted');
  sock.on('data', (chunk: Buffer) => {
    if (!inData) peer.chunks.push(chunk.toString('latin1'));
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        if (end < 0) return;
        const data = Buffer.from(buf.subarray(0, end + 2).toString('latin1').replace(/^\.\./gm, '.'), 'latin1');
        buf = buf.subarray(end + 5);
        inData = false;
        peer.commands.push('DATA-END');
        const done = tx!;
        tx = null;
        const record: LmtpTransaction = { ...done, data, answered: [] };
        peer.transactions.push(record);
        for (const to of done.to) {
          if (s.dropAfterFinals !== undefined && finalsSent >= s.dropAfterFinals) {
            // the replies already written still reach the client; then the connection is gone
            sock.end();
            sock.removeAllListeners('data');
            return;
          }
          if (s.silentAfterFinals !== undefined && finalsSent >= s.silentAfterFinals) silent = true;
          const reply = s.final?.(to, data) ?? `250 2.0.0 <${to}> delivered`;
          if (!silent) record.answered.push(reply);
          send(reply);
          finalsSent++;
        }
        if (s.extraReply) send('250 2.0.0 one reply too many');
        continue;
      }
      const lf = buf.indexOf('\n');
      if (lf < 0) return;
      const line = buf.subarray(0, lf).toString('utf8').replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      peer.commands.push(line);
      const verb = line.split(' ')[0]!.toUpperCase();
      switch (verb) {
        case 'LHLO': {
          if (s.lhloReply) {
            send(s.lhloReply);
            break;
          }
          const lines = ['lmtp.peer.test', ...(s.capabilities ?? DEFAULT_CAPS)];
          lines.forEach((l, i) => send(`250${i === lines.length - 1 ? ' ' : '-'}${l}`));
          break;
        }
        case 'MAIL':
          tx = { from: /^MAIL FROM:<([^>]*)>/i.exec(line)?.[1] ?? '', to: [] };
          send('250 2.1.0 Ok');
          break;
        case 'RCPT': {
          const to = /^RCPT TO:<([^>]*)>/i.exec(line)?.[1] ?? '';
          if (!tx) {
            send('503 5.5.1 need MAIL');
            break;
          }
          const reply = s.rcpt?.(to) ?? '250 2.1.5 Ok';
          if (reply.startsWith('2')) tx.to.push(to);
          send(reply);
          break;
        }
        case 'DATA':
          if (!tx || tx.to.length === 0) {
            tx = null;
            send('503 5.5.1 no valid recipients');
          } else {
            inData = true;
            send('354 go ahead');
          }
          break;
        case 'RSET':
          tx = null;
          send('250 2.0.0 Ok');
          break;
        case 'QUIT':
          send('221 2.0.0 Bye');
          sock.end();
          return;
        default:
          send('500 5.5.2 command not recognized');
      }
    }
  });
}
