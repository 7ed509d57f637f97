/*
 * The line each protocol sends a connection that is over a listener's limits (see listeners.ts): a
 * "try again later" in the protocol's own words, so clients retry instead of failing hard.
 */
import type { Protocol } from '../config/schema.js';

export function busyLine(proto: Protocol, hostname: string): string {
  switch (proto) {
    case 'smtp':
    case 'lmtp':
      return `421 4.7.0 ${hostname} Too many connections, try again later\r\n`;
    case 'imap':
      return '* BYE [UNAVAILABLE] Too many connections, try again later\r\n';
    case 'pop3':
      return '-ERR [SYS/TEMP] Too many connections, try again later\r\n';
  }
}
