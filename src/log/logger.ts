/*
 * The process logger: pino, one line per event, JSON lines or human text on stdout.
 * Field names administrators grep for are fixed here (LogFields) so every module logs them alike.
 * Never throws from a write: a line that cannot be reformatted is passed through unchanged.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogSettings } from '../config/schema.js';
import { stdoutSink } from './stdout-sink.js';

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
  /** where lines go; default stdout (stdout-sink.ts) */
  destination?: { write(line: string): unknown; flush?(cb: (err?: Error) => void): void };
}

export function createLogger(settings: Pick<LogSettings, 'level' | 'format'>, options: LoggerOptions = {}): Logger {
  const out = options.destination ?? stdoutSink();
  const dest: DestinationStream & { flush(cb: (err?: Error) => void): void } = {
    write: settings.format === 'text' ? (line: string) => void out.write(formatTextLine(line)) : (line: string) => void out.write(line),
    // pino's logger.flush() reaches the sink only through this: without it, lines still pending at exit were lost
    flush: (cb) => (out.flush ? out.flush(cb) : cb()),
  };
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

/** pino's JSON line as `<iso time> <level> <msg> key=value ...` (log.format: text). */
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
