/*
 * TLS pieces every protocol server shares: the server context from a section's `tls` files, the
 * handshake with a deadline (implicit TLS and STARTTLS/STLS alike), and the loopback test that decides
 * where plaintext logins are allowed. A bad certificate or key throws TlsSetupError naming the section.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { TlsFiles } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { ServerClock } from './clock.js';

export class TlsSetupError extends Error {
  override readonly name = 'TlsSetupError';
}

/** Reads the PEM files once; null when the section has no TLS. `section` names it in errors (e.g. "imap.tls"). */
export function loadTlsFiles(files: TlsFiles | undefined, section: string): SecureContext | null {
  if (!files) return null;
  try {
    return createSecureContext({ cert: readFileSync(files.cert), key: readFileSync(files.key) });
  } catch (err) {
    throw new TlsSetupError(`${section}: cannot load ${files.cert} / ${files.key}: ${(err as Error).message}`, { cause: err });
  }
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

/** Resolves when the TLS handshake is done; rejects (and destroys) on error, close or timeout. */
export function handshake(secure: TLSSocket, clock: ServerClock, timeoutMs: number, log: Logger | null): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const cancel = clock.schedule(timeoutMs, () => fail(new Error('TLS handshake timeout')));
    const done = (): void => {
      cancel();
      secure.off('error', fail);
      secure.off('close', closed);
    };
    function fail(err: Error): void {
      done();
      log?.info({ err, status: 'tls_failed' }, 'TLS handshake failed');
      secure.destroy();
      reject(err);
    }
    const closed = (): void => fail(new Error('connection closed during TLS handshake'));
    secure.once('error', fail);
    secure.once('close', closed);
    secure.once('secure', () => {
      done();
      resolve(secure);
    });
  });
}
