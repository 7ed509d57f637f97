/*
 * A scripted SMTP server for the SMTP client tests: real TCP on a loopback address, port 0, answering
 * as each test tells it (refusing greetings, RCPTs or DATA, leaving out extensions, limiting SIZE,
 * offering STARTTLS with a test certificate, dropping the connection mid-DATA, or going silent). It
 * records every command line and every message received (dot-unstuffed) for the assertions.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export interface PeerScript {
  greeting?: string;
  /** EHLO capability lines after the first; default PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN */
  capabilities?: string[];
  /** reply to EHLO (e.g. "502 5.5.1 no EHLO here"); default 250 with the capabilities */
  ehloReply?: string;
  mail?: (from: string) => string;
  rcpt?: (to: string) => string;
  data?: string;
  final?: (message: Buffer) => string;
  /** close the connection after this many bytes of message data */
  dropAfterDataBytes?: number;
  /** wait this long before the reply to the end of data */
  finalDelayMs?: number;
  /** stop answering once this command verb arrives (e.g. "DATA-END" for the end of data) */
  silentAt?: string;
  tls?: { key: string; cert: string };
  /** answer STARTTLS with 220, then send plaintext junk and hang up (a broken TLS stack) */
  brokenTls?: boolean;
  auth?: { username: string; password: string };
}

export interface Received {
  from: string;
  to: string[];
  data: Buffer;
  tls: boolean;
}

export interface Peer {
  address: string;
  port: number;
  commands: string[];
  messages: Received[];
  connections: number;
  /** most connections open at once */
  peak: number;
  /** most transactions (MAIL accepted, end of data not yet answered) at once */
  txPeak: number;
  /** transactions open now */
  active: number;
  /** raw chunks received outside message data, as text (shows what was pipelined) */
  chunks: string[];
  script: PeerScript;
  close(): Promise<void>;
}

const DEFAULT_CAPS = ['PIPELINING', 'SIZE 10000000', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES'];

export async function startPeer(script: PeerScript = {}, address = '127.0.0.1', port = 0): Promise<Peer> {
  const sockets = new Set<Socket>();
  const peer: Peer = { address, port: 0, commands: [], messages: [], connections: 0, peak: 0, txPeak: 0, active: 0, chunks: [], script, close: async () => {} };
  const server: Server = createServer((raw) => {
    peer.connections++;
    sockets.add(raw);
    peer.peak = Math.max(peer.peak, sockets.size);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => raw.destroy());
    handle(raw, peer, false);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  const addr = server.address();
  peer.port = typeof addr === 'object' && addr ? addr.port : 0;
  peer.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return peer;
}

function handle(sock: Socket, peer: Peer, tls: boolean): void {
  const s = peer.script;
  let buf = Buffer.alloc(0);
  let inData = false;
  let dataBytes = 0;
  let tx: { from: string; to: string[] } | null = null;
  let silent = false;
  let authStep: 'user' | 'pass' | null = null;
  const send = (text: string) => {
    if (!silent && !sock.destroyed) sock.write(`${text}\r\n`);
  };
  if (!tls) send(s.greeting ?? '220 peer.test ESMTP scripted');
  const onData = (chunk: Buffer): void => {
    if (!inData) peer.chunks.push(chunk.toString('latin1'));
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (inData) {
        dataBytes += chunk.length;
        chunk = Buffer.alloc(0);
        if (s.dropAfterDataBytes !== undefined && dataBytes >= s.dropAfterDataBytes) {
          sock.destroy();
          return;
        }
        const end = buf.indexOf('\r\n.\r\n');
        const atStart = buf.subarray(0, 3).toString() === '.\r\n';
        if (end < 0 && !atStart) return;
        const body = atStart ? Buffer.alloc(0) : buf.subarray(0, end + 2);
        buf = buf.subarray(atStart ? 3 : end + 5);
        inData = false;
        const data = Buffer.from(body.toString('latin1').replace(/^\.\./gm, '.'), 'latin1');
        peer.commands.push('DATA-END');
        if (s.silentAt === 'DATA-END') silent = true;
        const done = tx;
        tx = null;
        if (done && done.to.length > 0) {
          const reply = s.final?.(data) ?? `250 2.0.0 Ok: queued as Q${peer.messages.length + 1}`;
          if (reply.startsWith('2')) peer.messages.push({ ...done, data, tls });
          const answer = () => {
            peer.active--;
            send(reply);
          };
          if (s.finalDelayMs) setTimeout(answer, s.finalDelayMs);
          else answer();
        } else {
          peer.active--;
          send('554 5.5.1 Error: no valid recipients');
        }
        continue;
      }
      const lf = buf.indexOf('\n');
      if (lf < 0) return;
      const line = buf.subarray(0, lf).toString('utf8').replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      peer.commands.push(line);
      if (authStep) {
        const value = Buffer.from(line, 'base64').toString('utf8');
        if (authStep === 'user') {
          authStep = 'pass';
          lastUser = value;
          send('334 UGFzc3dvcmQ6');
        } else {
          authStep = null;
          send(value === s.auth?.password && lastUser === s.auth?.username ? '235 2.7.0 Authentication successful' : '535 5.7.8 Error: authentication failed');
        }
        continue;
      }
      const verb = line.split(' ')[0]!.toUpperCase();
      if (s.silentAt === verb) silent = true;
      switch (verb) {
        case 'EHLO': {
          if (s.ehloReply) {
            send(s.ehloReply);
            break;
          }
          const caps = [...(s.capabilities ?? DEFAULT_CAPS)];
          if (s.tls && !tls && !caps.includes('STARTTLS')) caps.push('STARTTLS');
          if (s.auth && !caps.some((c) => c.startsWith('AUTH'))) caps.push('AUTH PLAIN LOGIN');
          const lines = ['peer.test', ...caps];
          lines.forEach((l, i) => send(`250${i === lines.length - 1 ? ' ' : '-'}${l}`));
          break;
        }
        case 'HELO':
          send('250 peer.test');
          break;
        case 'STARTTLS':
          if (!s.tls || tls) {
            send('502 5.5.1 no');
            break;
          }
          send('220 2.0.0 Ready to start TLS');
          if (s.brokenTls) {
            sock.off('data', onData);
            setTimeout(() => sock.end('this is not a TLS handshake\r\n'), 20);
            return;
          }
          sock.off('data', onData);
          {
            const secure = new TLSSocket(sock, { isServer: true, key: s.tls.key, cert: s.tls.cert });
            secure.on('error', () => sock.destroy());
            handle(secure as unknown as Socket, peer, true);
          }
          return;
        case 'AUTH': {
          const [, mech, initial] = line.split(' ');
          if (mech?.toUpperCase() === 'PLAIN' && initial) {
            const [, user, pass] = Buffer.from(initial, 'base64').toString('utf8').split('\0');
            send(user === s.auth?.username && pass === s.auth?.password ? '235 2.7.0 Authentication successful' : '535 5.7.8 Error: authentication failed');
          } else if (mech?.toUpperCase() === 'LOGIN') {
            authStep = 'user';
            send('334 VXNlcm5hbWU6');
          } else send('504 5.5.4 unrecognized mechanism');
          break;
        }
        case 'MAIL': {
          const from = /^MAIL FROM:<([^>]*)>/i.exec(line)?.[1] ?? '';
          const reply = s.mail?.(from) ?? '250 2.1.0 Ok';
          if (reply.startsWith('2')) {
            if (!tx) peer.active++;
            peer.txPeak = Math.max(peer.txPeak, peer.active);
            tx = { from, to: [] };
          }
          send(reply);
          break;
        }
        case 'RCPT': {
          const to = /^RCPT TO:<([^>]*)>/i.exec(line)?.[1] ?? '';
          if (!tx) {
            send('503 5.5.1 Error: need MAIL command');
            break;
          }
          const reply = s.rcpt?.(to) ?? '250 2.1.5 Ok';
          if (reply.startsWith('2')) tx.to.push(to);
          send(reply);
          break;
        }
        case 'DATA':
          if (!tx) send('503 5.5.1 Error: need RCPT command');
          else if (tx.to.length === 0) {
            send('554 5.5.1 Error: no valid recipients');
            tx = null;
          } else if (s.data) send(s.data);
          else {
            send('354 End data with <CR><LF>.<CR><LF>');
            inData = true;
            dataBytes = 0;
          }
          break;
        case 'RSET':
          if (tx) peer.active--;
          tx = null;
          send('250 2.0.0 Ok');
          break;
        case 'QUIT':
          send('221 2.0.0 Bye');
          sock.end();
          return;
        default:
          send('502 5.5.2 Error: command not recognized');
      }
    }
  };
  let lastUser = '';
  sock.on('data', onData);
  sock.on('close', () => {
    if (tx) peer.active--;
    tx = null;
  });
}
