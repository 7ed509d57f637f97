import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../log/logger.js';
import { openStore } from './index.js';
import { startBlobCollector } from './maintenance.js';

test('the blob collector removes blobs left without references once the grace period is over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-gc-'));
  const store = await openStore({ backend: 'embedded', path: dir });
  let now = Date.now();
  const collector = startBlobCollector(store, createLogger({ level: 'silent', format: 'json' }), {
    intervalMs: 20,
    graceMs: 1000,
    clock: { now: () => now },
  });
  try {
    const { id, blobId } = await store.queue.commit({ sender: '', recipients: [{ address: 'r@x.test' }], content: Buffer.from('bytes') }, now);
    await store.queue.remove(id);
    assert.equal(await store.blobs.refs(blobId), 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await store.blobs.refs(blobId), 0, 'kept during the grace period');
    now += 5000;
    const deadline = Date.now() + 5000;
    while ((await store.blobs.refs(blobId)) !== null) {
      assert.ok(Date.now() < deadline, 'blob was not collected');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await collector.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
