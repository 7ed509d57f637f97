/*
 * End-to-end environment for the IMAP server: a real store (embedded in a temp dir, or a throw-away
 * PostgreSQL database), accounts made with provisionAccount, the server on 127.0.0.1 port 0, and a raw
 * line client for byte-exact checks. Everything is torn down by close().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { provisionAccount } from '../../src/directory/accounts.js';
import { createImapServer, type ImapLimits, type ImapServer } from '../../src/imap/server.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { openStore, type Account, type Store } from '../../src/store/index.js';
import { createTestDatabase } from '../helpers/pg.js';
import { testCertificate, testConfig } from '../smtp/env.js';

export type Backend = 'embedded' | 'postgres';

export interface ImapEnv {
  store: Store;
  server: ImapServer;
  port: number;
  tlsPort: number;
  logs: Record<string, unknown>[];
  account(address: string, password: string): Promise<Account>;
  close(): Promise<void>;
}

/** null when the backend is not available here (PostgreSQL unreachable outside CI). */
export async function startImap(backend: Backend, options: { limits?: Partial<ImapLimits>; tls?: boolean } = {}): Promise<ImapEnv | null> {
  let store: Store;
  let cleanup: () => Promise<void>;
  if (backend === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'cartero-imap-'));
    store = await openStore({ backend: 'embedded', path: join(dir, 'data') });
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const db = await createTestDatabase();
    if ('skipped' in db) {
      console.log(`# imap postgres tests skipped: ${db.skipped}`);
      return null;
    }
    store = await openStore({ backend: 'postgres', url: db.url, pool_size: 4 });
    cleanup = () => db.drop();
  }
  await store.directory.addDomain('example.test');
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug', base: null }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const config = testConfig(options.tls === false ? {} : { imap: { listen: [], tls: testCertificate() } });
  const server = createImapServer({ config, store, logger, limits: { authFailureDelayMs: 10, ...options.limits } });
  const listeners: Listeners = await startListeners([
    { proto: 'imap', address: '127.0.0.1', port: 0, key: 'imap', handler: server.handler({ key: 'imap' }) },
    ...(options.tls === false ? [] : [{ proto: 'imap', address: '127.0.0.1', port: 0, key: 'imaps', handler: server.handler({ key: 'imaps', tls: 'implicit' as const }) }]),
  ]);
  return {
    store,
    server,
    port: listeners.bound[0]!.port,
    tlsPort: listeners.bound[1]?.port ?? 0,
    logs,
    account: async (address, password) => provisionAccount(store, address, await hashPassword(password)),
    close: async () => {
      await Promise.all([server.drain(1000), listeners.close(1000)]);
      await store.close();
      await cleanup();
    },
  };
}

/** A message with CRLF line ends. */
export function message(subject: string, body: string, extra = ''): Buffer {
  return Buffer.from(`From: Bob <bob@remote.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: Tue, 05 Mar 2024 09:04:05 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@remote.test>\r\n${extra}\r\n${body}`);
}

/** A raw IMAP client: sends bytes, reads until a tagged response (or a pattern) arrives. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(readonly socket: Socket | TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new RawClient(socket);
    await c.until(/^\* OK .*\r\n/m);
    return c;
  }

  static async connectTls(port: number): Promise<RawClient> {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new RawClient(socket);
    await c.until(/^\* OK .*\r\n/m);
    return c;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received text matches `re`; returns and consumes everything up to the match's end. */
  async until(re: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.buf.toString('latin1');
      const m = re.exec(text);
      if (m) {
        const end = m.index + m[0].length;
        this.buf = this.buf.subarray(Buffer.byteLength(text.slice(0, end), 'latin1'));
        return text.slice(0, end);
      }
      if (this.closed) throw new Error(`connection closed; got so far: ${JSON.stringify(text.slice(-500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${re}; got: ${JSON.stringify(text.slice(-500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends `tag command` and returns everything up to and including the tagged response line. */
  async cmd(tag: string, command: string, timeoutMs = 5000): Promise<string> {
    this.write(`${tag} ${command}\r\n`);
    return this.until(new RegExp(`^${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (OK|NO|BAD)[^\r\n]*\r\n`, 'm'), timeoutMs);
  }

  /** Resolves when the server closes the connection. */
  async closedBy(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.buf.toString('latin1');
  }

  end(): void {
    this.socket.destroy();
  }
}
