/*
 * Shared pieces of the SMTP client tests: batch jobs, a captured logger, a throw-away self-signed
 * certificate made with openssl at test time (never committed), a free loopback port for smtp-sink
 * (which cannot report the port it bound), and smtp-sink itself as a child process.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BatchJob } from '../../src/delivery/smtp/agent.js';

export function job(destination: string, recipients: string[], over: Partial<BatchJob> = {}): BatchJob {
  return {
    queueId: 'QID1',
    sender: 'alice@sender.test',
    recipients: recipients.map((address) => ({ address, orcpt: null, notify: null })),
    content: Buffer.from('From: alice@sender.test\r\nSubject: test\r\n\r\nHello.\r\n'),
    meta: {},
    now: Date.now(),
    destination,
    ...over,
  };
}

export function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug', base: null }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { logger, lines };
}

export function makeCertificate(name: string): { key: string; cert: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`,
  ], { stdio: 'ignore' });
  const out = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  rmSync(dir, { recursive: true, force: true });
  return { ...out, cleanup() {} };
}

export async function freePort(address = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, address, resolve));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export function smtpSinkPath(): string | null {
  for (const p of ['/usr/sbin/smtp-sink', '/usr/bin/smtp-sink']) {
    try {
      execFileSync(p, [], { stdio: 'ignore' });
    } catch (err) {
      // it exits non-zero with a usage line when present
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return p;
    }
  }
  return null;
}

/** Starts smtp-sink on a free loopback port and waits until it accepts connections. */
export async function startSmtpSink(bin: string, args: string[]): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(bin, ['-u', 'nobody', ...args, `127.0.0.1:${port}`, '64'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
