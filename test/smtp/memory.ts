/*
 * An in-memory duplex pair and a small scripted client, so session tests drive the SMTP state machine
 * without sockets. Bounded waits only: every wait has a deadline and fails with what was received.
 */
import { Duplex } from 'node:stream';

/** Two connected duplex streams: what one writes, the other reads; end and destroy travel across. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.readableEnded) p.push(null);
        cb(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

/** Complete replies in `text`: the lines "ddd " or "ddd" that end one. */
export function finalReplyLines(text: string): string[] {
  return text.split('\r\n').filter((l) => /^\d{3}( |$)/.test(l));
}

export class MemoryClient {
  received = '';
  /** each write of the server as it arrived (pipelined replies come in one) */
  chunks: string[] = [];
  ended = false;

  constructor(readonly stream: Duplex) {
    stream.on('data', (d: Buffer) => {
      this.received += d.toString('utf8');
      this.chunks.push(d.toString('utf8'));
    });
    stream.on('end', () => {
      this.ended = true;
      stream.end();
    });
    stream.on('error', () => undefined);
  }

  send(data: string | Buffer): void {
    this.stream.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Waits until `n` complete replies have arrived in total; returns all reply lines so far. */
  async replies(n: number, timeoutMs = 2000): Promise<string[]> {
    await this.until(() => finalReplyLines(this.received).length >= n, timeoutMs, `${n} replies`);
    return finalReplyLines(this.received);
  }

  async closed(timeoutMs = 2000): Promise<void> {
    await this.until(() => this.ended, timeoutMs, 'the server to close');
  }

  async until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received:\n${this.received}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}
