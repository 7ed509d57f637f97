/*
 * One SMTP session on a pair of byte streams instead of a socket: `sendmail -bs` (standard input and
 * output of a local program, which is trusted like mynetworks). The same session code, settings and
 * limits as a listener's, without STARTTLS. The output stream is written to but never ended or
 * destroyed (process.stdout must stay usable); the promise resolves when the session is over (QUIT,
 * end of input, timeout or error) and never rejects.
 */
import { randomBytes } from 'node:crypto';
import { Duplex, Writable, type Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { AuthLimiter } from '../auth/limiter.js';
import { systemClock, type ServerClock } from '../net/clock.js';
import { DEFAULT_SMTP_LIMITS, type SmtpLimits } from './server.js';
import type { SmtpServices } from './services.js';
import { Session } from './session/session.js';

export interface StdioSessionOptions {
  input: Readable;
  output: Writable;
  config: Config;
  services: SmtpServices;
  logger: Logger;
  clock?: ServerClock;
  /** overrides of the defaults (and of config.smtp.message_size_limit) */
  limits?: Partial<SmtpLimits>;
  /** the listener name in log lines; default "stdio" */
  listener?: string;
}

export function runStdioSession(o: StdioSessionOptions): Promise<void> {
  const clock = o.clock ?? systemClock;
  const limits = { ...DEFAULT_SMTP_LIMITS, messageSizeLimit: o.config.smtp.message_size_limit, ...o.limits };
  const { maxAuthFailures, authFailureWindowMs, tlsHandshakeTimeoutMs: _tls, ...sessionLimits } = limits;
  const output = o.output;
  // Ending the session must not end the process's standard output: the end stops here.
  const sink = new Writable({
    write: (chunk: Buffer, _encoding, done) => void output.write(chunk, (err) => done(err ?? null)),
    final: (done) => done(),
  });
  const stream = Duplex.from({ readable: o.input, writable: sink });
  return new Promise((resolve) => {
    const session = new Session({
      stream,
      peer: { address: '127.0.0.1', port: 0, trusted: true, loopback: true },
      tls: false,
      settings: {
        ...sessionLimits,
        hostname: o.config.hostname,
        submission: false,
        starttls: false,
        listener: o.listener ?? 'stdio',
        lmtp: false,
        postmasterDomain: o.config.domains[0] ?? o.config.hostname,
      },
      services: o.services,
      logger: o.logger.child({ proto: 'smtp', client: 'stdio' }),
      clock,
      authLimiter: new AuthLimiter({ maxFailures: maxAuthFailures, windowMs: authFailureWindowMs }),
      newId: () => (clock.now().toString(36) + randomBytes(5).toString('hex')).toUpperCase(),
      onClose: () => resolve(),
    });
    session.start();
  });
}
