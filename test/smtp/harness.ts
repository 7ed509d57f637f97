/*
 * Runs one SMTP session over an in-memory stream with fake services, a manual or real clock and a
 * captured log, for the session's unit and transcript tests.
 */
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { DEFAULT_SMTP_LIMITS } from '../../src/smtp/server.js';
import { AuthLimiter } from '../../src/auth/limiter.js';
import { systemClock, type ServerClock } from '../../src/net/clock.js';
import { Session } from '../../src/smtp/session/session.js';
import type { PeerInfo, SessionSettings } from '../../src/smtp/session/types.js';
import { FakeServices } from './fake-services.js';
import { duplexPair, MemoryClient } from './memory.js';

export const HOST = 'mx.example.test';

export interface HarnessOptions {
  settings?: Partial<SessionSettings>;
  peer?: Partial<PeerInfo>;
  services?: FakeServices;
  clock?: ServerClock;
  authLimiter?: AuthLimiter;
  tls?: boolean;
  upgradeTls?: (stream: Duplex) => Promise<Duplex>;
}

export interface Harness {
  session: Session;
  client: MemoryClient;
  services: FakeServices;
  logs: Record<string, unknown>[];
}

export function testSettings(over: Partial<SessionSettings> = {}): SessionSettings {
  const { maxAuthFailures: _m, authFailureWindowMs: _w, tlsHandshakeTimeoutMs: _t, ...limits } = DEFAULT_SMTP_LIMITS;
  return { ...limits, messageSizeLimit: 10_000, authFailureDelayMs: 0, hostname: HOST, submission: false, starttls: false, listener: 'smtp.listen[0]', lmtp: false, postmasterDomain: 'example.test', ...over };
}

export function captureLogger(logs: Record<string, unknown>[]) {
  return pino({ level: 'debug', base: null }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
}

let ids = 0;
const open = new Set<Session>();

/** Destroys every session the harness started (call from afterEach). */
export function endSessions(): void {
  for (const s of open) s.destroy();
  open.clear();
}

export function startSession(options: HarnessOptions = {}): Harness {
  const [serverSide, clientSide] = duplexPair();
  const services = options.services ?? new FakeServices();
  const logs: Record<string, unknown>[] = [];
  const session = new Session({
    stream: serverSide,
    peer: { address: '192.0.2.10', port: 40000, trusted: false, loopback: false, ...options.peer },
    tls: options.tls ?? false,
    settings: testSettings(options.settings),
    services,
    logger: captureLogger(logs).child({ proto: 'smtp', client: options.peer?.address ?? '192.0.2.10' }),
    clock: options.clock ?? systemClock,
    authLimiter: options.authLimiter ?? new AuthLimiter({ maxFailures: 5, windowMs: 600_000 }),
    ...(options.upgradeTls ? { upgradeTls: options.upgradeTls } : {}),
    newId: () => `ID${String(++ids).padStart(4, '0')}`,
  });
  const client = new MemoryClient(clientSide);
  open.add(session);
  session.start();
  return { session, client, services, logs };
}

/** Sends `lines` (each gets CRLF) in one write and waits for `replies` more complete replies. */
export async function exchange(h: Harness, lines: string[], replies = lines.length): Promise<string[]> {
  const before = (await h.client.replies(0)).length;
  h.client.send(lines.map((l) => `${l}\r\n`).join(''));
  const all = await h.client.replies(before + replies);
  return all.slice(before);
}
