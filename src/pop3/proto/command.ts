/*
 * POP3 command parsing (RFC 1939, 2449 CAPA, 2595 STLS, 5034 AUTH). Pure: one line of text in, a typed
 * command or a typed error out; no state, no I/O. Keywords are case-insensitive; arguments are separated
 * by single spaces, except that PASS takes the rest of the line as the password (RFC 1939 §7 allows
 * spaces in it). Message numbers are 1*DIGIT; a number past the safe integer range is kept as
 * Infinity so the session answers "no such message" rather than a syntax error.
 */

/** RFC 2449 §4: a command line is at most 255 octets including the CRLF. */
export const COMMAND_LINE_LIMIT = 255;
/** A SASL continuation line (RFC 5034 §4 lifts the 255-octet limit for it). */
export const AUTH_LINE_LIMIT = 8192;

export type Command =
  | { verb: 'USER'; name: string }
  | { verb: 'PASS'; password: string }
  | { verb: 'AUTH'; mechanism: string | null; initial: string | null }
  | { verb: 'CAPA' }
  | { verb: 'STLS' }
  | { verb: 'QUIT' }
  | { verb: 'STAT' }
  | { verb: 'NOOP' }
  | { verb: 'RSET' }
  | { verb: 'LIST'; msg: number | null }
  | { verb: 'UIDL'; msg: number | null }
  | { verb: 'RETR'; msg: number }
  | { verb: 'DELE'; msg: number }
  | { verb: 'TOP'; msg: number; lines: number };

export type Verb = Command['verb'];

export type ParseError =
  /** not a command we know (`verb` is what the client sent, cut short for logs) */
  | { kind: 'unknown'; verb: string }
  /** a known command with wrong arguments; `text` says what was expected */
  | { kind: 'syntax'; verb: Verb; text: string };

export type ParseResult = { ok: true; command: Command } | { ok: false; error: ParseError };

export const VERBS: readonly Verb[] = ['USER', 'PASS', 'AUTH', 'CAPA', 'STLS', 'QUIT', 'STAT', 'NOOP', 'RSET', 'LIST', 'UIDL', 'RETR', 'DELE', 'TOP'];

const DIGITS = /^[0-9]+$/;
/** RFC 2449 §4: each argument is at most 40 characters (PASS and the AUTH initial response excepted). */
const MAX_ARG = 40;

/** A non-negative decimal number; Infinity when it has too many digits to be exact. Null if not digits. */
export function parseNumber(text: string): number | null {
  if (!DIGITS.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Infinity;
}

function syntax(verb: Verb, text: string): ParseResult {
  return { ok: false, error: { kind: 'syntax', verb, text } };
}

function ok(command: Command): ParseResult {
  return { ok: true, command };
}

function isVerb(word: string): word is Verb {
  return (VERBS as readonly string[]).includes(word);
}

export function parseCommand(line: string): ParseResult {
  const space = line.indexOf(' ');
  const word = (space < 0 ? line : line.slice(0, space)).toUpperCase();
  const rest = space < 0 ? null : line.slice(space + 1);
  if (!isVerb(word)) return { ok: false, error: { kind: 'unknown', verb: word.slice(0, 12) } };
  if (word === 'PASS') return rest === null || rest === '' ? syntax(word, 'PASS needs a password') : ok({ verb: 'PASS', password: rest });
  const args = rest === null ? [] : rest.split(' ');
  if (args.some((a) => a === '')) return syntax(word, 'Arguments must be separated by single spaces');
  if (word !== 'AUTH' && args.some((a) => a.length > MAX_ARG)) return syntax(word, `Arguments are at most ${MAX_ARG} characters`);
  switch (word) {
    case 'USER':
      return args.length === 1 ? ok({ verb: 'USER', name: args[0]! }) : syntax(word, 'USER needs exactly one argument: the user name');
    case 'AUTH':
      if (args.length > 2) return syntax(word, 'AUTH takes a mechanism and an optional initial response');
      if (args[0] !== undefined && args[0].length > MAX_ARG) return syntax(word, 'Mechanism name too long');
      return ok({ verb: 'AUTH', mechanism: args[0]?.toUpperCase() ?? null, initial: args[1] ?? null });
    case 'CAPA':
    case 'STLS':
    case 'QUIT':
    case 'STAT':
    case 'NOOP':
    case 'RSET':
      return args.length === 0 ? ok({ verb: word }) : syntax(word, `${word} takes no arguments`);
    case 'LIST':
    case 'UIDL': {
      if (args.length === 0) return ok({ verb: word, msg: null });
      const msg = args.length === 1 ? parseNumber(args[0]!) : null;
      return msg === null ? syntax(word, `${word} takes an optional message number`) : ok({ verb: word, msg });
    }
    case 'RETR':
    case 'DELE': {
      const msg = args.length === 1 ? parseNumber(args[0]!) : null;
      return msg === null ? syntax(word, `${word} needs a message number`) : ok({ verb: word, msg });
    }
    case 'TOP': {
      const msg = args.length === 2 ? parseNumber(args[0]!) : null;
      const lines = args.length === 2 ? parseNumber(args[1]!) : null;
      if (msg === null || lines === null) return syntax(word, 'TOP needs a message number and a non-negative number of lines');
      return ok({ verb: 'TOP', msg, lines });
    }
  }
}
