/*
 * Default values of the node configuration: what a single node on one machine needs to run with an
 * almost empty file. Plain data only; the schema (schema.ts) applies them, docs/configuration.md lists them.
 * Never reads the environment except os.hostname() for the default hostname.
 */
import { hostname } from 'node:os';

export const DEFAULT_STORE_PATH = './data';
export const DEFAULT_POOL_SIZE = 10;
export const DEFAULT_MESSAGE_SIZE_LIMIT = 10_240_000;
/** Loopback only: relaying for anything wider must be an explicit decision of the administrator. */
export const DEFAULT_MYNETWORKS: readonly string[] = ['127.0.0.0/8', '::1/128'];
export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 50;

/** Queue manager and local delivery (the `delivery:` section); times in seconds unless named _ms. */
export const DEFAULT_DELIVERY = {
  recipient_delimiter: '+',
  /** Postfix's minimal_backoff_time, maximal_backoff_time and maximal_queue_lifetime */
  minimal_backoff: 300,
  maximal_backoff: 4000,
  maximal_queue_lifetime: 5 * 24 * 3600,
  concurrency: 100,
  lease_seconds: 60,
  poll_interval_ms: 1000,
  /** Postfix's virtual_alias_recursion_limit is 1000; ten levels are plenty for real alias tables. */
  virtual_alias_recursion_limit: 10,
  virtual_alias_expansion_limit: 1000,
  delay_warning_time: 0,
  bounce_size_limit: 50_000,
  bounce_queue_lifetime: 5 * 24 * 3600,
  /** off: an exact copy is filed again, as Postfix's local(8) and Dovecot's LMTP do */
  duplicate_suppression_window: 0,
} as const;

export const DEFAULT_LISTENERS = {
  smtp: [
    { address: '127.0.0.1', port: 2525 },
    { address: '127.0.0.1', port: 2587, submission: true },
  ],
  imap: [{ address: '127.0.0.1', port: 2143 }],
  pop3: [{ address: '127.0.0.1', port: 2110 }],
  lmtp: [{ address: '127.0.0.1', port: 2424 }],
} as const;

export function defaultHostname(): string {
  return hostname() || 'localhost.localdomain';
}
