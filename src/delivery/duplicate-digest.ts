/*
 * What makes two deliveries "the same message" for duplicate suppression (NewMessage.deliveryDigest):
 * the Message-ID and the body, byte for byte. Cyrus suppresses on the Message-ID alone; a sender that
 * reuses Message-IDs (broken scripts do) would then lose distinct mail, so the body must match too. The
 * headers are left out on purpose: the copy a client resends through another node after its 250 was lost
 * differs from the first only in the trace headers the nodes added. A message without a Message-ID is
 * never suppressed. Pure; the body's hash is the only cost that grows with the message.
 */
import { createHash } from 'node:crypto';

const CR = 0x0d;
const LF = 0x0a;
/** a header block longer than this is not searched (the message is then never suppressed) */
const MAX_HEADER_BYTES = 256 * 1024;

/** Where the body starts (after the blank line), or -1 when the header block has no end within reach. */
function bodyStart(message: Buffer): number {
  const limit = Math.min(message.length, MAX_HEADER_BYTES);
  let at = 0;
  while (at < limit) {
    const lf = message.indexOf(LF, at);
    if (lf < 0 || lf >= limit) return -1;
    const blank = lf === at || (lf === at + 1 && message[at] === CR);
    at = lf + 1;
    if (blank) return at;
  }
  return -1;
}

/** The Message-ID header's value (unfolded, trimmed), or null; the first one counts. */
export function messageIdOf(header: string): string | null {
  const m = /^message-id[ \t]*:((?:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*))/im.exec(header);
  if (!m) return null;
  const value = m[1]!.replace(/\r?\n[ \t]/g, ' ').trim();
  return value === '' ? null : value;
}

/** The digest of `message` (as queued or received, before our trace headers), or null: never suppressed. */
export function duplicateDigest(message: Buffer): string | null {
  const start = bodyStart(message);
  if (start < 0) return null;
  const id = messageIdOf(message.toString('latin1', 0, start));
  if (id === null) return null;
  return createHash('sha256').update(id, 'latin1').update('\n').update(message.subarray(start)).digest('base64url');
}
