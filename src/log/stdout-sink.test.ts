import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { TurnBatchedFile } from './stdout-sink.js';

test('lines of one turn reach the file together at its end; flush writes what is pending at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-sink-'));
  const path = join(dir, 'log');
  const fd = openSync(path, 'a');
  try {
    const sink = new TurnBatchedFile(fd);
    sink.write('one\n');
    sink.write('two\n');
    assert.equal(readFileSync(path, 'utf8'), '', 'nothing written during the turn');
    await turn();
    assert.equal(readFileSync(path, 'utf8'), 'one\ntwo\n');
    sink.write('three ünicode\n');
    let flushed = false;
    sink.flush(() => (flushed = true));
    assert.ok(flushed);
    assert.equal(readFileSync(path, 'utf8'), 'one\ntwo\nthree ünicode\n');
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sink whose file is gone loses the lines but never throws', async () => {
  const sink = new TurnBatchedFile(987_654); // not an open descriptor
  sink.write('lost\n');
  await turn();
  let error: Error | undefined;
  sink.flush((err) => (error = err));
  assert.equal(error, undefined);
});
