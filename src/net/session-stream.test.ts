import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { ManualClock } from './clock.js';
import { SessionStream } from './session-stream.js';

function recorder() {
  const seen: string[] = [];
  return {
    seen,
    listeners: {
      data: (c: Buffer) => seen.push(`data:${c.toString()}`),
      end: () => seen.push('end'),
      error: (e: Error) => seen.push(`error:${e.message}`),
      close: () => seen.push('close'),
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test('events reach the session only while it listens; a released stream errors into nothing', async () => {
  const plain = new PassThrough();
  const r = recorder();
  const io = new SessionStream(plain, r.listeners);
  plain.write('early');
  await tick();
  assert.deepEqual(r.seen, [], 'nothing before listen()');
  io.listen();
  await tick();
  assert.deepEqual(r.seen, ['data:early']);
  assert.equal(io.release(), plain);
  plain.write('handshake bytes');
  plain.destroy(new Error('tls went wrong'));
  await tick();
  assert.deepEqual(r.seen, ['data:early'], 'released: neither data, error nor close');
  const secure = new PassThrough();
  io.replace(secure);
  assert.equal(io.current, secure);
  secure.end('after');
  await tick();
  assert.deepEqual(r.seen, ['data:early', 'data:after', 'end', 'close']);
});

test('drained resolves on drain, on close, or at the timeout after onTimeout ran', async () => {
  const clock = new ManualClock();
  const s = new PassThrough({ highWaterMark: 4 });
  const io = new SessionStream(s, recorder().listeners);
  s.write('more than four bytes');
  let done = false;
  const p = io.drained(clock, 1000).then(() => (done = true));
  await tick();
  assert.equal(done, false);
  s.read();
  await p;

  s.write('more than four bytes');
  const closed = io.drained(clock, 1000);
  s.destroy();
  await closed;

  const stuck = new PassThrough({ highWaterMark: 4 });
  const io2 = new SessionStream(stuck, recorder().listeners);
  stuck.write('more than four bytes');
  const order: string[] = [];
  const timed = io2.drained(clock, 1000, () => order.push('timeout')).then(() => order.push('resolved'));
  clock.advance(999);
  await tick();
  assert.deepEqual(order, []);
  clock.advance(1);
  await timed;
  assert.deepEqual(order, ['timeout', 'resolved']);
});
