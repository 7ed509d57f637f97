import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { runStoreContract } from './contract.js';

runStoreContract('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cartero-store-'));
  const store = await openStore({ backend: 'embedded', path: dir });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
    async corruptBlob(id: string) {
      await writeFile(join(dir, 'blobs', id.slice(0, 2), id), 'rotten bytes');
    },
  };
});
