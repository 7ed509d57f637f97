/*
 * src/mime: message structure parsed once (at delivery or APPEND) with byte offsets, stored beside the
 * message, and everything IMAP FETCH/SEARCH derives from it. Pure: bytes and structures in, strings and
 * bytes out, no I/O, and no input makes these functions throw (except reading back a damaged stored
 * structure, which is a MimeError).
 */
export type { Address, Disposition, Envelope, MessageStructure, MimeErrorKind, MimePart, Param } from './types.js';
export { MimeError } from './types.js';
export { MAX_DEPTH, MAX_PARTS, parseStructure } from './parse.js';
export { deserializeStructure, serializeStructure } from './serialize.js';
export { imapBodyStructure, imapEnvelope } from './bodystructure.js';
export { binaryBytes, resolvePart, sectionBytes, type SectionSpec } from './sections.js';
export { headerValues, textContains } from './search.js';
export { sentDate, sentDay } from './date.js';
export { imapString } from './imap-string.js';
