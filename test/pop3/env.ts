/*
 * End-to-end environment for the POP3 server: a store on either backend, a validated test configuration,
 * a throwaway self-signed certificate made with openssl in a temporary directory (never committed), and
 * the server on 127.0.0.1 ports picked by the kernel (a plain listener and an implicit-TLS one).
 * Also runs the real clients: Python poplib (poplib_client.py) and curl.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { LocalMaildropLocks } from '../../src/pop3/lock.js';
import { createPop3Server, type Pop3Limits, type Pop3Server } from '../../src/pop3/server.js';
import { Pop3Client } from './client.js';
import { captureLogger, type LogLine, type TestStore } from './fixture.js';

export const HOST = 'pop.example.test';
const SCRIPT = fileURLToPath(new URL('./poplib_client.py', import.meta.url));

let certDir: string | null = null;

/** A self-signed certificate for localhost, made once per test process. */
export function testCertificate(): { cert: string; key: string } {
  if (!certDir) {
    certDir = mkdtempSync(join(tmpdir(), 'cartero-pop3-tls-'));
    const dir = certDir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore', timeout: 20_000 });
  }
  return { cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') };
}

export function testConfig(pop3: Record<string, unknown> = {}): Config {
  const raw = { hostname: HOST, domains: ['example.test'], smtp: { listen: [] }, imap: { listen: [] }, pop3: { listen: [], ...pop3 }, lmtp: { listen: [] } };
  const result = validateConfig(raw, process.cwd());
  if ('problems' in result) throw new Error(`bad test config: ${JSON.stringify(result.problems)}`);
  return result.config;
}

export interface TestServer {
  server: Pop3Server;
  locks: LocalMaildropLocks;
  logs: LogLine[];
  port: number;
  /** the implicit-TLS listener, when started with tls */
  tlsPort: number;
  close(): Promise<void>;
}

export async function startTestServer(ts: TestStore, options: { tls?: boolean; limits?: Partial<Pop3Limits> } = {}): Promise<TestServer> {
  const config = testConfig(options.tls ? { tls: testCertificate() } : {});
  const logs: LogLine[] = [];
  const locks = new LocalMaildropLocks();
  const server = createPop3Server({ config, store: ts.store, logger: captureLogger(logs), locks, limits: { authFailureDelayMs: 20, ...options.limits } });
  const specs = [{ proto: 'pop3', address: '127.0.0.1', port: 0, key: 'pop3.listen[0]', handler: server.handler({ key: 'pop3.listen[0]' }) }];
  if (options.tls) specs.push({ proto: 'pop3', address: '127.0.0.1', port: 0, key: 'pop3.listen[1]', handler: server.handler({ key: 'pop3.listen[1]', tls: 'implicit' }) });
  const listeners: Listeners = await startListeners(specs);
  return {
    server,
    locks,
    logs,
    port: listeners.bound[0]!.port,
    tlsPort: listeners.bound[1]?.port ?? 0,
    close: async () => {
      await Promise.all([server.drain(2000), listeners.close(2000)]);
    },
  };
}

/** A raw client on a TCP socket. */
export async function rawClient(port: number): Promise<Pop3Client & { socket: Socket }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  return Object.assign(new Pop3Client(socket), { socket });
}

/** Starts TLS on a raw client's socket (after the server's +OK to STLS). */
export async function upgradeClient(socket: Socket): Promise<Pop3Client & { socket: TLSSocket }> {
  const secure = await new Promise<TLSSocket>((resolve, reject) => {
    const t = tlsConnect({ socket, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(t));
    t.once('error', reject);
  });
  return Object.assign(new Pop3Client(secure), { socket: secure });
}

export type PoplibStep = [number, string, ...(string | number)[]];
export type PoplibResult = { ok?: unknown; error?: string }[];

/** Runs poplib_client.py: steps on numbered connections, each answered with its result or error text. */
export function poplib(job: { port: number; user: string; password: string; steps: PoplibStep[] }): Promise<PoplibResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`poplib client exited ${code}: ${errText}`));
      resolve(JSON.parse(out) as PoplibResult);
    });
    child.stdin.end(JSON.stringify(job));
  });
}

/** Runs curl with `args`; resolves with stdout as bytes and the exit code. */
export function curl(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '-S', '--max-time', '20', ...args], { encoding: 'buffer', timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}
