/*
 * The connection under one protocol session (SMTP, LMTP, POP3, IMAP): which stream is current (it changes
 * once, at STARTTLS/STLS), the session's listeners on it, and waiting for the client to read what was
 * written. The sessions differ in how they consume input; this is the plumbing they shared line for line.
 */
import type { Duplex } from 'node:stream';
import type { ServerClock } from './clock.js';

export interface StreamListeners {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
  close(): void;
}

export class SessionStream {
  private stream: Duplex;
  private readonly events: [string, Parameters<Duplex['on']>[1]][];

  constructor(stream: Duplex, listeners: StreamListeners) {
    this.stream = stream;
    this.events = [
      ['data', listeners.data],
      ['end', listeners.end],
      ['error', listeners.error],
      ['close', listeners.close],
    ];
  }

  /** Starts delivering the current stream's events to the session. */
  listen(): void {
    for (const [event, fn] of this.events) this.stream.on(event, fn);
  }

  get current(): Duplex {
    return this.stream;
  }

  /**
   * Stops listening to the current stream and returns it, for the TLS handshake to take over; errors it
   * raises later are the handshake's, never the session's.
   */
  release(): Duplex {
    const s = this.stream;
    for (const [event, fn] of this.events) s.off(event, fn);
    s.on('error', () => undefined);
    return s;
  }

  /** The secure stream becomes current, and the session hears its events. */
  replace(stream: Duplex): void {
    this.stream = stream;
    this.listen();
  }

  /**
   * Resolves once the client has read what is buffered (or the stream closed), or after `timeoutMs`;
   * `onTimeout` runs then, before the promise resolves.
   */
  drained(clock: ServerClock, timeoutMs: number, onTimeout?: () => void): Promise<void> {
    const stream = this.stream;
    return new Promise((resolve) => {
      const done = (): void => {
        cancel();
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      const cancel = clock.schedule(timeoutMs, () => {
        onTimeout?.();
        done();
      });
      stream.on('drain', done);
      stream.on('close', done);
    });
  }
}
