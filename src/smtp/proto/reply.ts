/*
 * SMTP reply formatting (RFC 5321 §4.2) with enhanced status codes (RFC 2034/3463). Pure: turns a code,
 * an enhanced code and text lines into wire text. Never lets CR, LF or other control characters from the
 * text reach the wire (they become "?"), so text from policy verdicts or clients cannot forge reply lines.
 */

export interface Reply {
  /** three-digit reply code */
  code: number;
  /** "class.subject.detail"; absent only on the greeting and the EHLO/HELO replies (RFC 2034 §3) */
  enhanced?: string;
  lines: readonly string[];
}

export function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  return enhanced === undefined ? { code, lines } : { code, enhanced, lines };
}

/** 2xx and 3xx replies are positive; 4xx transient, 5xx permanent. */
export function isPositive(r: Reply): boolean {
  return r.code < 400;
}

const UNSAFE = /[\x00-\x1f\x7f]/g;

export function formatReply(r: Reply): string {
  const lines = r.lines.length > 0 ? r.lines : [''];
  const prefix = r.enhanced ? `${r.enhanced} ` : '';
  let out = '';
  lines.forEach((line, i) => {
    const sep = i === lines.length - 1 ? ' ' : '-';
    out += `${r.code}${sep}${prefix}${line.replace(UNSAFE, '?')}\r\n`;
  });
  return out;
}
