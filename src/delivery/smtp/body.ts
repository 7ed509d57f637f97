/*
 * The message bytes as they go on the wire, pure: CRLF line ends and dot-stuffing with the end-of-data
 * line (RFC 5321 §4.5.2), the 8-bit and UTF-8 tests that decide BODY= and SMTPUTF8, and the downgrade
 * of an 8-bit MIME body to quoted-printable for a peer without 8BITMIME (RFC 6152 §3, as Postfix does).
 * Bare CR and bare LF both become CRLF so no next hop can read an end of data we did not mean (SMTP
 * smuggling). A structure the downgrade cannot handle safely is refused with a reason, never mangled.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The DATA payload: CRLF-normalized, dot-stuffed, ending with CRLF "." CRLF. */
export function dataPayload(content: Buffer): Buffer {
  // first pass: the output length
  let extra = 0;
  let lineStart = true;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (lineStart && b === DOT) extra++;
    if (b === CR) {
      if (content[i + 1] === LF) i++;
      else extra++;
      lineStart = true;
    } else if (b === LF) {
      extra++;
      lineStart = true;
    } else lineStart = false;
  }
  const endsWithNewline = content.length === 0 || lineStart;
  const out = Buffer.allocUnsafe(content.length + extra + (endsWithNewline ? 0 : 2) + 3);
  let o = 0;
  lineStart = true;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (lineStart && b === DOT) out[o++] = DOT;
    if (b === CR || b === LF) {
      if (b === CR && content[i + 1] === LF) i++;
      out[o++] = CR;
      out[o++] = LF;
      lineStart = true;
    } else {
      out[o++] = b;
      lineStart = false;
    }
  }
  if (!endsWithNewline) {
    out[o++] = CR;
    out[o++] = LF;
  }
  out[o++] = DOT;
  out[o++] = CR;
  out[o++] = LF;
  return out.subarray(0, o);
}

export function has8bit(buf: Buffer | string): boolean {
  if (typeof buf === 'string') return /[^\x00-\x7f]/.test(buf);
  for (let i = 0; i < buf.length; i++) if (buf[i]! > 0x7f) return true;
  return false;
}

/** The header block (up to the first empty line). */
export function headerBlock(content: Buffer): Buffer {
  const text = content.toString('latin1');
  const end = /\r?\n\r?\n/.exec(text);
  return end ? content.subarray(0, end.index) : content;
}

/**
 * Whether the message needs SMTPUTF8 at the next hop (Postfix's autodetection): a non-ASCII envelope
 * address always; UTF-8 headers only when the original client asked for SMTPUTF8.
 */
export function needsSmtpUtf8(sender: string, recipients: readonly string[], content: Buffer, requested: boolean): boolean {
  if (has8bit(sender) || recipients.some((r) => has8bit(r))) return true;
  return requested && has8bit(headerBlock(content));
}

export type Downgrade = { ok: true; content: Buffer } | { ok: false; reason: string };

const MAX_DEPTH = 20;

class DowngradeError extends Error {}

interface Entity {
  headers: string;
  /** separator between headers and body ("\r\n" after the last header line's CRLF), "" if none */
  separator: string;
  body: string;
}

function splitEntity(text: string): Entity {
  if (text.startsWith('\r\n')) return { headers: '', separator: '\r\n', body: text.slice(2) };
  const i = text.indexOf('\r\n\r\n');
  if (i < 0) return { headers: text, separator: '', body: '' };
  return { headers: text.slice(0, i + 2), separator: '\r\n', body: text.slice(i + 4) };
}

/** Unfolded value of the first header field `name` (lower-case name), or null. */
function headerValue(headers: string, name: string): string | null {
  const unfolded = headers.replace(/\r\n(?=[ \t])/g, '');
  for (const line of unfolded.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return null;
}

function withoutHeader(headers: string, name: string): string {
  const lines = headers.split('\r\n');
  const out: string[] = [];
  let dropping = false;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && dropping) continue;
    const colon = line.indexOf(':');
    dropping = colon > 0 && line.slice(0, colon).trim().toLowerCase() === name;
    if (!dropping) out.push(line);
  }
  return out.join('\r\n');
}

function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

/** Quoted-printable (RFC 2045 §6.7) of a CRLF text held as a latin1 string; lines at most 76 characters. */
export function quotedPrintable(text: string): string {
  const lines = text.split('\r\n');
  const out: string[] = [];
  for (const line of lines) {
    let current = '';
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      const last = i === line.length - 1;
      const literal = (c >= 33 && c <= 126 && c !== 61) || ((c === 32 || c === 9) && !last);
      const token = literal ? line[i]! : `=${c.toString(16).toUpperCase().padStart(2, '0')}`;
      if (current.length + token.length > 75) {
        out.push(`${current}=`);
        current = '';
      }
      current += token;
    }
    out.push(current);
  }
  return out.join('\r\n');
}

function convertEntity(text: string, depth: number, top: boolean): string {
  if (depth > MAX_DEPTH) throw new DowngradeError(`MIME nesting deeper than ${MAX_DEPTH} levels`);
  const e = splitEntity(text);
  if (!has8bit(e.body)) return text;
  const contentType = (headerValue(e.headers, 'content-type') ?? 'text/plain').toLowerCase();
  const cte = (headerValue(e.headers, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  const mimeVersion = headerValue(e.headers, 'mime-version') !== null;

  if (top && !mimeVersion) {
    // not MIME: make it a text/plain entity of the charset it most likely is
    const charset = isUtf8(Buffer.from(e.body, 'latin1')) ? 'utf-8' : 'unknown-8bit';
    const headers = `${withoutHeader(withoutHeader(e.headers, 'content-type'), 'content-transfer-encoding')}`;
    return `${headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=${charset}\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(e.body)}`;
  }
  if (contentType.startsWith('multipart/')) {
    if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') throw new DowngradeError(`multipart entity with Content-Transfer-Encoding ${cte}`);
    const boundary = boundaryOf(headerValue(e.headers, 'content-type') ?? '');
    if (!boundary) throw new DowngradeError('multipart entity without a boundary');
    return e.headers.replace(/(^|\r\n)(content-transfer-encoding[ \t]*:)[ \t]*8bit/i, '$1$2 7bit') + e.separator + convertMultipart(e.body, boundary, depth);
  }
  if (contentType.startsWith('message/rfc822')) {
    return e.headers.replace(/(^|\r\n)(content-transfer-encoding[ \t]*:)[ \t]*8bit/i, '$1$2 7bit') + e.separator + convertEntity(e.body, depth + 1, false);
  }
  if (contentType.startsWith('message/') || contentType.startsWith('multipart')) throw new DowngradeError(`8-bit ${contentType.split(';')[0]} entity`);
  if (cte === 'base64' || cte === 'quoted-printable') throw new DowngradeError(`8-bit data in a ${cte} part`);
  const headers = withoutHeader(e.headers, 'content-transfer-encoding');
  return `${headers}Content-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(e.body)}`;
}

function convertMultipart(body: string, boundary: string, depth: number): string {
  const delimiter = `--${boundary}`;
  // alternating: text lines outside parts, delimiter lines, and the lines of each part
  const out: string[] = [];
  let part: string[] | null = null;
  let seen = false;
  let closed = false;
  const flush = (): void => {
    if (part) out.push(convertEntity(part.join('\r\n'), depth + 1, false));
    part = null;
  };
  for (const line of body.split('\r\n')) {
    if (!closed && line.startsWith(delimiter)) {
      const rest = line.slice(delimiter.length);
      if (/^[ \t]*$/.test(rest) || /^--[ \t]*$/.test(rest)) {
        flush();
        out.push(line);
        seen = true;
        if (rest.startsWith('--')) closed = true;
        else part = [];
        continue;
      }
    }
    if (part) part.push(line);
    else if (has8bit(line)) throw new DowngradeError('8-bit text outside the MIME parts');
    else out.push(line);
  }
  flush();
  if (!seen) throw new DowngradeError('multipart entity whose boundary never occurs');
  return out.join('\r\n');
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

/** Converts the 8-bit parts of a MIME message to quoted-printable; headers are left as they are. */
export function downgradeTo7bit(content: Buffer): Downgrade {
  if (!has8bit(content)) return { ok: true, content };
  const text = content.toString('latin1').replace(/\r?\n/g, '\r\n');
  try {
    return { ok: true, content: Buffer.from(convertEntity(text, 0, true), 'latin1') };
  } catch (err) {
    if (err instanceof DowngradeError) return { ok: false, reason: `cannot convert the 8-bit message to 7 bits: ${err.message}` };
    throw err;
  }
}
