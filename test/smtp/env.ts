/*
 * End-to-end environment for the SMTP server: a throwaway self-signed certificate made with openssl in a
 * temporary directory (never committed), a validated test configuration, and an SMTP server with fake
 * services on 127.0.0.1 ports picked by the kernel. Everything is torn down by close().
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';
import { startListeners, type Listeners } from '../../src/net/listeners.js';
import { createSmtpServer, type SmtpLimits, type SmtpServer } from '../../src/smtp/server.js';
import { FakeServices } from './fake-services.js';
import { captureLogger } from './harness.js';
import { MemoryClient } from './memory.js';

export const HOST = 'mx.example.test';

let certDir: string | null = null;

/** A self-signed certificate for localhost, made once per test process. */
export function testCertificate(): { cert: string; key: string } {
  if (!certDir) {
    certDir = mkdtempSync(join(tmpdir(), 'cartero-smtp-tls-'));
    const dir = certDir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore', timeout: 20_000 });
  }
  return { cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') };
}

export function testConfig(extra: Record<string, unknown> = {}, smtp: Record<string, unknown> = {}): Config {
  const raw = {
    hostname: HOST,
    domains: ['example.test'],
    // loopback is NOT trusted here, so tests see what an outside client sees
    mynetworks: ['192.0.2.0/24'],
    smtp: { listen: [], ...smtp },
    imap: { listen: [] },
    pop3: { listen: [] },
    lmtp: { listen: [] },
    ...extra,
  };
  const result = validateConfig(raw, process.cwd());
  if ('problems' in result) throw new Error(`bad test config: ${JSON.stringify(result.problems)}`);
  return result.config;
}

export interface TestListener {
  name: string;
  submission?: boolean;
  tls?: 'implicit';
  maxConnectionsPerClient?: number;
}

export interface TestServer {
  server: SmtpServer;
  services: FakeServices;
  listeners: Listeners;
  port(name: string): number;
  logs: Record<string, unknown>[];
  close(timeoutMs?: number): Promise<void>;
}

export async function startTestServer(
  options: { listeners?: TestListener[]; tls?: boolean; limits?: Partial<SmtpLimits>; config?: Config; services?: FakeServices } = {},
): Promise<TestServer> {
  const config = options.config ?? testConfig({}, options.tls ? { tls: testCertificate() } : {});
  const services = options.services ?? new FakeServices();
  const logs: Record<string, unknown>[] = [];
  const server = createSmtpServer({ config, services, logger: captureLogger(logs), limits: { authFailureDelayMs: 10, ...options.limits } });
  const wanted = options.listeners ?? [{ name: 'mx' }];
  const listeners = await startListeners(
    wanted.map((l) => ({
      proto: 'smtp',
      address: '127.0.0.1',
      port: 0,
      key: l.name,
      handler: server.handler({ key: l.name, submission: l.submission ?? false, ...(l.tls ? { tls: l.tls } : {}) }),
      ...(l.maxConnectionsPerClient ? { maxConnectionsPerClient: l.maxConnectionsPerClient } : {}),
    })),
  );
  return {
    server,
    services,
    listeners,
    logs,
    port: (name) => listeners.bound[wanted.findIndex((l) => l.name === name)]!.port,
    close: async (timeoutMs = 2000) => {
      await Promise.all([server.drain(timeoutMs), listeners.close(timeoutMs)]);
    },
  };
}

/** A raw client on a TCP socket (reads replies as MemoryClient does). */
export async function rawClient(port: number): Promise<MemoryClient & { socket: Socket }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  return Object.assign(new MemoryClient(socket), { socket });
}

/** Starts TLS on a raw client's socket (after the server's 220 to STARTTLS). */
export async function upgradeClient(socket: Socket): Promise<MemoryClient & { socket: TLSSocket }> {
  const secure = await new Promise<TLSSocket>((resolve, reject) => {
    const t = tlsConnect({ socket, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(t));
    t.once('error', reject);
  });
  return Object.assign(new MemoryClient(secure), { socket: secure });
}

export async function tlsClient(port: number): Promise<MemoryClient & { socket: TLSSocket }> {
  const secure = await new Promise<TLSSocket>((resolve, reject) => {
    const t = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(t));
    t.once('error', reject);
  });
  return Object.assign(new MemoryClient(secure), { socket: secure });
}
