/*
 * The body of RETR and TOP on the wire (RFC 1939 §3): every line that begins with "." gets one more,
 * a CRLF is added if the content does not end with a line end, and ".\r\n" ends the response. Pure and
 * incremental: a generator of chunks of bounded size over the one Buffer read from the store, so a 50 MB
 * message is never copied whole a second time and the session can wait for the socket between chunks.
 * `topOf` picks the header and the first n body lines for TOP without copying.
 */

export const CHUNK_SIZE = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const TERMINATOR = Buffer.from('.\r\n');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n');

/** Yields the dot-stuffed content and the terminator, in chunks of at most `chunkSize` + 5 octets. */
export function* dotStuffed(content: Buffer, chunkSize = CHUNK_SIZE): Generator<Buffer> {
  let out = Buffer.allocUnsafe(chunkSize + 1);
  let n = 0;
  let i = 0;
  let atLineStart = true;
  let lf = -1;
  while (i < content.length) {
    if (atLineStart && content[i] === DOT) out[n++] = DOT;
    if (lf < i) {
      lf = content.indexOf(LF, i);
      if (lf < 0) lf = content.length;
    }
    const lineEnd = Math.min(lf + 1, content.length);
    const take = Math.min(lineEnd - i, chunkSize - n);
    content.copy(out, n, i, i + take);
    n += take;
    i += take;
    atLineStart = i === lf + 1;
    if (n >= chunkSize) {
      yield out.subarray(0, n);
      out = Buffer.allocUnsafe(chunkSize + 1);
      n = 0;
    }
  }
  const tail = content.length > 0 && content[content.length - 1] !== LF ? CRLF_TERMINATOR : TERMINATOR;
  if (n + tail.length <= out.length) {
    tail.copy(out, n);
    yield out.subarray(0, n + tail.length);
  } else {
    if (n > 0) yield out.subarray(0, n);
    yield Buffer.from(tail);
  }
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
