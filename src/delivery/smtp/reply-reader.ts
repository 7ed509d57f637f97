/*
 * Reading the server's replies on the client side (RFC 5321 §4.2): bytes in, complete replies out,
 * pure. A peer that sends garbage, mixes codes inside a multiline reply, or never ends a line or a
 * multiline reply is reported as a protocol error instead of making us buffer without bound. Bare LF
 * line ends are accepted (many servers send them; they cannot confuse a reply).
 */

export interface ServerReply {
  code: number;
  /** the text of each line, without code and separator */
  lines: string[];
}

export class ReplyProtocolError extends Error {
  override readonly name = 'ReplyProtocolError';
}

export const REPLY_LINE_LIMIT = 4096;
export const REPLY_LINES_LIMIT = 200;

const LINE = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s;

/** "250 2.0.0 Ok" (lines joined by a space, as Postfix logs them); control characters shown as "?". */
export function replyText(r: ServerReply): string {
  return `${r.code} ${r.lines.join(' ')}`.replace(/[\x00-\x1f\x7f]/g, '?').trimEnd();
}

export class ReplyReader {
  private pending = Buffer.alloc(0);
  private lines: string[] = [];
  private code = 0;

  /** octets of an unfinished reply held (a non-zero value after a final reply means the peer ran ahead) */
  get buffered(): number {
    return this.pending.length + this.lines.length;
  }

  /** Feeds bytes; returns the replies they complete. Throws ReplyProtocolError on a broken stream. */
  feed(chunk: Buffer): ServerReply[] {
    const out: ServerReply[] = [];
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const lf = buf.indexOf(0x0a);
      if (lf < 0) break;
      let end = lf;
      if (end > 0 && buf[end - 1] === 0x0d) end--;
      if (end > REPLY_LINE_LIMIT) throw new ReplyProtocolError(`reply line longer than ${REPLY_LINE_LIMIT} octets`);
      const line = buf.subarray(0, end).toString('utf8');
      buf = buf.subarray(lf + 1);
      const m = LINE.exec(line);
      if (!m) throw new ReplyProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 60))}`);
      const code = Number(m[1]);
      if (this.lines.length > 0 && code !== this.code) throw new ReplyProtocolError(`reply code changed inside a multiline reply (${this.code} then ${code})`);
      this.code = code;
      this.lines.push(m[3] ?? '');
      if (this.lines.length > REPLY_LINES_LIMIT) throw new ReplyProtocolError(`multiline reply longer than ${REPLY_LINES_LIMIT} lines`);
      if (m[2] !== '-') {
        out.push({ code, lines: this.lines });
        this.lines = [];
      }
    }
    if (buf.length > REPLY_LINE_LIMIT) throw new ReplyProtocolError(`reply line longer than ${REPLY_LINE_LIMIT} octets`);
    this.pending = Buffer.from(buf);
    return out;
  }
}
