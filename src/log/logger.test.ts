import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, formatTextLine } from './logger.js';

function capture(format: 'json' | 'text', level: 'info' | 'debug' = 'info') {
  const lines: string[] = [];
  const logger = createLogger({ level, format }, { destination: { write: (s: string) => lines.push(s) } });
  return { logger, lines };
}

test('text format: ISO time, padded level, message, key=value fields, one line per event', () => {
  const { logger, lines } = capture('text');
  logger.info({ queue_id: '3F2A9C', client: '127.0.0.1', status: 'sent', delay: 0.25 }, 'delivered');
  logger.warn({ recipient: 'bob@example.test', relay: 'mx [127.0.0.3]:25' }, 'deferred');
  logger.debug('hidden at info level');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  delivered queue_id=3F2A9C client=127\.0\.0\.1 status=sent delay=0\.25\n$/);
  assert.match(lines[1] ?? '', /Z warn  deferred recipient=bob@example\.test relay="mx \[127\.0\.0\.3\]:25"\n$/);
});

test('text format: errors show their message only, never a multi-line stack', () => {
  const { logger, lines } = capture('text');
  logger.error({ err: new Error('boom\nsecond line'), proto: 'smtp' }, 'failed');
  assert.equal(lines.length, 1);
  assert.equal((lines[0] ?? '').split('\n').length, 2);
  assert.match(lines[0] ?? '', / error failed err="boom\\nsecond line" proto=smtp\n$/);
});

test('json format: one JSON object per line with level label and ISO time', () => {
  const { logger, lines } = capture('json');
  logger.info({ proto: 'imap', user: 'bob@example.test' }, 'login');
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(record['level'], 'info');
  assert.equal(record['msg'], 'login');
  assert.equal(record['proto'], 'imap');
  assert.match(String(record['time']), /^\d{4}-\d\d-\d\dT.*Z$/);
});

test('formatTextLine passes through what it cannot parse', () => {
  assert.equal(formatTextLine('not json'), 'not json\n');
  assert.equal(
    formatTextLine('{"level":"info","time":"2026-11-26T10:00:00.000Z","msg":"hello","user":"a b","n":1}\n'),
    '2026-11-26T10:00:00.000Z info  hello user="a b" n=1\n',
  );
});
