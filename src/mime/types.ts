/*
 * The shape of a parsed message as stored beside it: a part tree with byte offsets into the stored
 * bytes, plus the envelope fields of every message header (top level and message/rfc822). It is plain
 * JSON (no classes, no Buffers) so the store can keep it as an opaque string and IMAP can answer
 * FETCH and SEARCH from it without parsing MIME again. Offsets are only valid for the exact bytes
 * the structure was computed from.
 */

/** IMAP address: [display name, source route (adl), mailbox, host]. A group is bracketed by
 *  [null, null, groupname, null] and [null, null, null, null], as in the IMAP ENVELOPE. */
export type Address = [name: string | null, adl: string | null, mailbox: string | null, host: string | null];

/** Content-Type / Content-Disposition parameter: [attribute as written, value unquoted]. RFC 2231
 *  continuations are merged; an extended (charset'lang'%xx) value keeps its `*` suffix on the name. */
export type Param = [name: string, value: string];

export interface Envelope {
  date: string | null;
  subject: string | null;
  from: Address[] | null;
  sender: Address[] | null;
  replyTo: Address[] | null;
  to: Address[] | null;
  cc: Address[] | null;
  bcc: Address[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

export interface Disposition {
  /** lowercase, e.g. "attachment" */
  type: string;
  params: Param[];
}

export interface MimePart {
  /** offset of the first header byte */
  headerStart: number;
  /** offset of the first body byte (after the blank line, or where the header ran out) */
  bodyStart: number;
  /** offset just past the body (the line break before a boundary belongs to the boundary) */
  end: number;
  /** lowercase */
  type: string;
  /** lowercase */
  subtype: string;
  params: Param[];
  id: string | null;
  description: string | null;
  /** Content-Transfer-Encoding as written (trimmed), null when absent */
  encoding: string | null;
  md5: string | null;
  disposition: Disposition | null;
  language: string[] | null;
  location: string | null;
  /** line count of the body */
  lines: number;
  /** children of a parsed multipart (never empty when present) */
  parts?: MimePart[];
  /** the encapsulated message of a parsed message/rfc822 or message/global */
  message?: { envelope: Envelope; root: MimePart };
}

export interface MessageStructure {
  version: 1;
  envelope: Envelope;
  root: MimePart;
}

export type MimeErrorKind = 'invalid_structure';

/** Raised only for a stored structure that cannot be read back; parsing never throws. */
export class MimeError extends Error {
  override readonly name = 'MimeError';
  readonly kind: MimeErrorKind = 'invalid_structure';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
