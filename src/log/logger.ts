/*
 * The process logger: pino, one line per event, JSON lines or human text on stdout.
 * Field names administrators grep for are fixed here (LogFields) so every module logs them alike.
 * Never throws from a write: a line that cannot be reformatted is passed through unchanged.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogSettings } from '../config/schema.js';

export type { Logger } from 'pino';

/** Stable field names used across modules (Postfix-style log analysis depends on them). */
export interface LogFields {
  queue_id?: string;
  client?: string;
  sender?: string;
  recipient?: string;
  status?: string;
  delay?: number;
  relay?: string;
  user?: string;
  proto?: string;
}

export interface LoggerOptions {
  /** where lines go; default stdout, written asynchronously */
  destination?: { write(line: string): unknown };
}

/**
 * Stdout written asynchronously: a synchronous write per line (Node's behaviour for files and pipes)
 * costs the event loop a system call per event under load, and a slow reader of a pipe would stall
 * every session. Lines written while a write is in flight go out together. Call `logger.flush()`
 * before exiting.
 */
function asyncStdout(): { write(line: string): unknown } {
  return pino.destination({ dest: 1, sync: false });
}

export function createLogger(settings: Pick<LogSettings, 'level' | 'format'>, options: LoggerOptions = {}): Logger {
  const out = options.destination ?? asyncStdout();
  const dest: DestinationStream =
    settings.format === 'text' ? textDestination(out) : { write: (line: string) => void out.write(line) };
  return pino(
    {
      level: settings.level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/** A destination turning pino's JSON lines into `<iso time> <level> <msg> key=value ...`. */
export function textDestination(out: { write(line: string): unknown }): DestinationStream {
  return {
    write(line: string): void {
      out.write(formatTextLine(line));
    },
  };
}

export function formatTextLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const { time, level, msg, ...fields } = record;
  const parts = [String(time ?? new Date().toISOString()), String(level ?? '').padEnd(5), String(msg ?? '')];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(key, value)}`);
  }
  return `${parts.join(' ')}\n`;
}

function formatValue(key: string, value: unknown): string {
  // A serialized error shows its message only: stacks would break "one line per event".
  if (key === 'err' && value && typeof value === 'object' && 'message' in value) {
    return JSON.stringify(String(value.message));
  }
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value);
}
