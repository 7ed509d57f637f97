/*
 * Looks at the header section of a received message (RFC 5322 §2.2) to learn which fields are present
 * and how often, so submission can add a missing Date: or Message-ID: and the hop count (Received:
 * lines) can stop a mail loop. Pure and read-only: it never rewrites the message.
 * The header section ends at the first empty line; a message without one is all header.
 */

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/** How many times each field (lower-case name) occurs in the header section of `content`. */
export function headerFieldCounts(content: Buffer): Map<string, number> {
  const names = new Map<string, number>();
  let start = 0;
  while (start < content.length) {
    let end = content.indexOf(LF, start);
    if (end < 0) end = content.length;
    const lineEnd = end > start && content[end - 1] === CR ? end - 1 : end;
    if (lineEnd === start) break;
    const first = content[start]!;
    // continuation lines start with white space and name no field
    if (first !== 0x20 && first !== 0x09) {
      const colon = content.indexOf(COLON, start);
      if (colon > start && colon < lineEnd) {
        const name = content.toString('latin1', start, colon).trimEnd().toLowerCase();
        names.set(name, (names.get(name) ?? 0) + 1);
      }
    }
    start = end + 1;
  }
  return names;
}
