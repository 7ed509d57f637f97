/*
 * The one table from a protocol error kind to its SMTP reply. Parsers return `ProtoError` values (never
 * throw for bad input); the session answers `errorReply(err)` and logs `err.kind`. Owns no state and no
 * I/O; wording follows Postfix so administrators recognise the lines.
 */
import { reply, type Reply } from './reply.js';

export type ProtoErrorKind =
  | 'line_too_long'
  | 'bare_cr'
  | 'bare_lf'
  | 'data_bare_cr'
  | 'control_char'
  | 'bad_utf8'
  | 'unknown_command'
  | 'unimplemented'
  | 'syntax'
  | 'sender_syntax'
  | 'recipient_syntax'
  | 'sender_refused_form'
  | 'recipient_refused_form'
  | 'utf8_address'
  | 'param_unknown'
  | 'param_value'
  | 'param_duplicate';

export interface ProtoError {
  kind: ProtoErrorKind;
  /** replaces the default text of the table when the parser knows better (e.g. "Syntax: MAIL FROM:<address>") */
  text?: string;
}

const TABLE: Record<ProtoErrorKind, { code: number; enhanced: string; text: string }> = {
  line_too_long: { code: 500, enhanced: '5.5.2', text: 'Error: line too long' },
  bare_cr: { code: 500, enhanced: '5.5.2', text: 'Error: bare <CR> received' },
  bare_lf: { code: 550, enhanced: '5.5.2', text: 'Error: bare <LF> received' },
  data_bare_cr: { code: 550, enhanced: '5.5.2', text: 'Error: bare <CR> received' },
  control_char: { code: 500, enhanced: '5.5.2', text: 'Error: control character in command' },
  bad_utf8: { code: 500, enhanced: '5.5.2', text: 'Error: invalid UTF-8 in command' },
  unknown_command: { code: 500, enhanced: '5.5.1', text: 'Error: command not recognized' },
  unimplemented: { code: 502, enhanced: '5.5.1', text: 'Error: command not implemented' },
  syntax: { code: 501, enhanced: '5.5.4', text: 'Syntax error in parameters or arguments' },
  sender_syntax: { code: 501, enhanced: '5.1.7', text: 'Bad sender address syntax' },
  recipient_syntax: { code: 501, enhanced: '5.1.3', text: 'Bad recipient address syntax' },
  sender_refused_form: { code: 553, enhanced: '5.1.7', text: 'Sender address form not accepted' },
  recipient_refused_form: { code: 553, enhanced: '5.1.3', text: 'Recipient address form not accepted' },
  utf8_address: { code: 553, enhanced: '5.6.7', text: 'Must declare SMTPUTF8 to send UTF-8 addresses' },
  param_unknown: { code: 555, enhanced: '5.5.4', text: 'Unsupported option' },
  param_value: { code: 501, enhanced: '5.5.4', text: 'Bad parameter value' },
  param_duplicate: { code: 501, enhanced: '5.5.4', text: 'Duplicate parameter' },
};

export function protoError(kind: ProtoErrorKind, text?: string): ProtoError {
  return text === undefined ? { kind } : { kind, text };
}

export function errorReply(err: ProtoError): Reply {
  const row = TABLE[err.kind];
  return reply(row.code, row.enhanced, err.text ?? row.text);
}

/** What every parser returns: a typed value or a typed error, never an exception for bad input. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtoError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const err = <T>(kind: ProtoErrorKind, text?: string): Result<T> => ({ ok: false, error: protoError(kind, text) });
