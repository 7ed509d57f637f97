/*
 * The body of RETR and TOP on the wire (RFC 1939 §3): every line that begins with "." gets one more,
 * a CRLF is added if the content does not end with a line end, and ".\r\n" ends the response. Pure and
 * incremental: a generator of chunks of bounded size over the one Buffer read from the store, so a 50 MB
 * message is never copied whole a second time and the session can wait for the socket between chunks;
 * a message without a line that needs stuffing is not copied at all.
 * `topOf` picks the header and the first n body lines for TOP without copying.
 */

export const CHUNK_SIZE = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const TERMINATOR = Buffer.from('.\r\n');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n');
const LF_DOT = Buffer.from('\n.');

/** True when some line of `content` begins with "." (the only case where the wire differs from the content). */
export function needsStuffing(content: Buffer): boolean {
  return content.length > 0 && (content[0] === DOT || content.indexOf(LF_DOT) >= 0);
}

/**
 * Yields the dot-stuffed content in chunks of at most `chunkSize` octets, then the terminator. Mail
 * almost never has a line beginning with ".", and then the chunks are views of `content` (no copy, no
 * allocation per message); otherwise the stuffed bytes are copied into buffers no larger than needed.
 */
export function* dotStuffed(content: Buffer, chunkSize = CHUNK_SIZE): Generator<Buffer> {
  const tail = content.length > 0 && content[content.length - 1] !== LF ? CRLF_TERMINATOR : TERMINATOR;
  if (!needsStuffing(content)) {
    for (let i = 0; i < content.length; i += chunkSize) yield content.subarray(i, Math.min(i + chunkSize, content.length));
    yield tail;
    return;
  }
  // a buffer holds at most chunkSize octets, sized to what is left so a small message does not take a
  // whole chunk (+ 1: room for a stuffed dot; more dots simply start another buffer)
  const fresh = (left: number) => Buffer.allocUnsafe(Math.min(chunkSize, left + 1));
  let out = fresh(content.length);
  let n = 0;
  let i = 0;
  let atLineStart = true;
  let lf = -1;
  while (i < content.length) {
    if (n === out.length) {
      yield out;
      out = fresh(content.length - i);
      n = 0;
    }
    if (atLineStart && content[i] === DOT) out[n++] = DOT;
    if (lf < i) {
      lf = content.indexOf(LF, i);
      if (lf < 0) lf = content.length;
    }
    const lineEnd = Math.min(lf + 1, content.length);
    const take = Math.min(lineEnd - i, out.length - n);
    content.copy(out, n, i, i + take);
    n += take;
    i += take;
    // false after a dot that filled the buffer (i did not move), so the dot is not written twice
    atLineStart = i === lf + 1;
  }
  if (n > 0) yield out.subarray(0, n);
  yield tail;
}

/**
 * RFC 1939 TOP: the header, the blank line that ends it, and at most `lines` lines of the body. A message
 * without a blank line is all header. Returns a view of `content`, not a copy.
 */
export function topOf(content: Buffer, lines: number): Buffer {
  let p = 0;
  let bodyStart = -1;
  while (p < content.length) {
    const lf = content.indexOf(LF, p);
    if (lf < 0) break;
    const blank = lf === p || (lf === p + 1 && content[p] === CR);
    p = lf + 1;
    if (blank) {
      bodyStart = p;
      break;
    }
  }
  if (bodyStart < 0) return content;
  let end = bodyStart;
  for (let k = 0; k < lines && end < content.length; k++) {
    const lf = content.indexOf(LF, end);
    end = lf < 0 ? content.length : lf + 1;
  }
  return content.subarray(0, end);
}
