/*
 * Who did what to the queue: every administrative action of `cartero queue` (hold, release, requeue,
 * delete, flush, pause, resume) is written as one structured log line on the command's standard error
 * (its standard output carries the command's answer, --json included) and as one record in the store's
 * admin log, which every node of a cluster shares and `cartero queue show ID` / `queue log` read back.
 * The actor is the Unix user running the command with its pid and host, as Postfix's postsuper logs it.
 * A failed log write never undoes the action; it is reported on standard error.
 */
import { hostname, userInfo } from 'node:os';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { QueueAdminRecord, Store } from '../store/index.js';
import type { Io } from './context.js';

export interface Actor {
  user: string;
  pid: number;
  host: string;
}

export function currentActor(): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${typeof process.getuid === 'function' ? process.getuid() : '?'}`;
  }
  return { user, pid: process.pid, host: hostname() };
}

export function actorName(a: Actor): string {
  return `${a.user} (pid ${a.pid}) on ${a.host}`;
}

export interface Audit {
  /** logs and records one action; `target` is a queue id, a domain or "ALL" */
  record(action: string, target: string, detail?: string | null): Promise<void>;
}

export interface AuditOptions {
  store: Store;
  config: Pick<Config, 'log'>;
  io: Io;
  actor?: Actor;
  now?: () => number;
  /** default: pino lines at the configured level and format on the Io's standard error */
  logger?: Logger;
}

export function createAudit(o: AuditOptions): Audit {
  const actor = o.actor ?? currentActor();
  const name = actorName(actor);
  const logger = o.logger ?? createLogger({ level: o.config.log.level, format: o.config.log.format }, { destination: { write: (line: string) => o.io.err(line) } });
  const now = o.now ?? Date.now;
  return {
    async record(action, target, detail = null) {
      const entry: QueueAdminRecord = { at: now(), actor: name, action, target, detail };
      const isId = /^[0-9A-Z]{10,40}$/.test(target);
      logger.info(
        { ...(isId ? { queue_id: target } : { target }), action, user: actor.user, pid: actor.pid, host: actor.host, ...(detail ? { detail } : {}) },
        `${target}: ${action} by ${name}${detail ? ` (${detail})` : ''}`,
      );
      try {
        await o.store.queue.recordAdmin(entry);
      } catch (err) {
        logger.warn({ err, action, target }, `${target}: the admin log could not record "${action}"`);
      }
    },
  };
}
