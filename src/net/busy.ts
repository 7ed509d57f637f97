/*
 * Stand-in connection handlers until the real SMTP/LMTP/IMAP/POP3 servers land: each connection gets a
 * protocol-correct "temporarily unavailable" greeting and is closed, so clients retry later instead of
 * failing hard. Logs one line per connection. Never reads from the client.
 */
import type { Protocol } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { closeWith, type ConnectionHandler } from './listeners.js';

/** Greeting that tells a client of `proto` to come back later (4xx / BYE / -ERR [SYS/TEMP]). */
export function unavailableLine(proto: Protocol, hostname: string): string {
  switch (proto) {
    case 'smtp':
    case 'lmtp':
      return `421 4.3.2 ${hostname} Service not available yet, closing transmission channel\r\n`;
    case 'imap':
      return '* BYE Cartero IMAP not available yet\r\n';
    case 'pop3':
      return '-ERR [SYS/TEMP] Cartero POP3 not available yet\r\n';
  }
}

/** Reply to a connection over a listener's limits. */
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

export function placeholderHandler(proto: Protocol, hostname: string, logger: Logger): ConnectionHandler {
  return {
    accept(socket, conn) {
      logger.info({ proto, client: conn.client, status: 'unavailable' }, 'connection');
      closeWith(socket, unavailableLine(proto, hostname));
    },
    refuse(socket, conn, reason) {
      logger.warn({ proto, client: conn.client, status: 'refused', reason }, 'connection');
      closeWith(socket, busyLine(proto, hostname));
    },
  };
}
