/*
 * Where log lines go: stdout, written so that logging never costs a session more than it must.
 * - stdout a regular file (`>> /var/log/cartero.log`, the benches): the lines of one event-loop turn are
 *   joined and written with one write(2) at the end of the turn. A per-line asynchronous write costs a
 *   thread-pool hand-off each way; measured on the SMTP bench, logging at `info` took 20–30% of the
 *   messages per second that way. A page-cache write does not block on a slow reader, and a SIGKILL
 *   loses at most the lines of the turn under way.
 * - anything else (a pipe, journald's socket, a terminal): asynchronous (sonic-boom), so a slow reader
 *   never stalls the event loop; lines written while a write is in flight go out together.
 * flush() writes out what is pending (call it before exiting).
 */
import { fstatSync, writeSync } from 'node:fs';
import { pino } from 'pino';

export interface LineSink {
  write(line: string): void;
  flush(cb: (err?: Error) => void): void;
}

/** Lines of one turn, one write(2) at its end; for a regular file. */
export class TurnBatchedFile implements LineSink {
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly fd: number) {}

  write(line: string): void {
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.writeOut());
    }
  }

  flush(cb: (err?: Error) => void): void {
    this.writeOut();
    cb();
  }

  private writeOut(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at, bytes.length - at);
    } catch {
      // a full disk or a closed stdout must not take the mail system down with it; the lines are lost
    }
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

export function stdoutSink(): LineSink {
  if (isRegularFile(1)) return new TurnBatchedFile(1);
  const boom = pino.destination({ dest: 1, sync: false });
  return {
    write: (line) => void boom.write(line),
    flush: (cb) => boom.flush(cb),
  };
}
