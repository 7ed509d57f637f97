/*
 * Message bytes of the embedded backend as content-addressed files: blobs/<2 hex>/<sha256>.
 * A file appears under its final name only after its bytes are fsynced (temp file + datasync + rename +
 * directory fsync), so a crash leaves either nothing or a whole file; reads verify the hash.
 * Never decides whether a blob is referenced: that is the database's job (blobs.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobId } from '../../api.js';
import { sha256, verifyBlob } from '../../common.js';
import { StoreError } from '../../errors.js';

const HEX = '0123456789abcdef';

export class BlobFiles {
  private readonly dirSyncs = new Map<string, DirSync>();

  private constructor(readonly root: string) {}

  /** Creates the 256 fan-out directories once and makes them durable, so writes only fsync a leaf. */
  static async open(root: string): Promise<BlobFiles> {
    await mkdir(root, { recursive: true });
    let created = false;
    for (const a of HEX) {
      for (const b of HEX) {
        const dir = join(root, a + b);
        if (!existsSync(dir)) {
          await mkdir(dir);
          created = true;
        }
      }
    }
    if (created) await fsyncPath(root);
    return new BlobFiles(root);
  }

  /** For the worker thread: the directories already exist (open() ran in the main thread). */
  static attach(root: string): BlobFiles {
    return new BlobFiles(root);
  }

  pathOf(id: BlobId): string {
    return join(this.root, id.slice(0, 2), id);
  }

  /** Durable when it resolves. Equal content already on disk is not written again. */
  async write(content: Buffer, id: BlobId = sha256(content)): Promise<{ id: BlobId; size: number }> {
    const final = this.pathOf(id);
    if (existsSync(final)) return { id, size: content.length };
    const dir = join(this.root, id.slice(0, 2));
    const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o640);
    try {
      await fh.writeFile(content);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
    await this.dirSync(dir).sync();
    return { id, size: content.length };
  }

  async read(id: BlobId): Promise<Buffer> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new StoreError('not_found', `blob ${id} not found`);
    let content: Buffer;
    try {
      content = await readFile(this.pathOf(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError('not_found', `blob ${id} not found`);
      throw new StoreError('unavailable', `cannot read blob ${id}`, { cause: err });
    }
    return verifyBlob(id, content);
  }

  existsSync(id: BlobId): boolean {
    return existsSync(this.pathOf(id));
  }

  unlinkSync(id: BlobId): boolean {
    try {
      unlinkSync(this.pathOf(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Blob files (and leftover temp files, which it deletes) last modified before `cutoff`. */
  async filesOlderThan(cutoff: number): Promise<BlobId[]> {
    const out: BlobId[] = [];
    for (const sub of await readdir(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of await readdir(join(this.root, sub))) {
        const path = join(this.root, sub, name);
        const st = await stat(path).catch(() => null);
        if (!st || st.mtimeMs >= cutoff) continue;
        if (name.startsWith('.tmp-')) await unlink(path).catch(() => undefined);
        else if (/^[0-9a-f]{64}$/.test(name)) out.push(name);
      }
    }
    return out;
  }

  private dirSync(dir: string): DirSync {
    let s = this.dirSyncs.get(dir);
    if (!s) this.dirSyncs.set(dir, (s = new DirSync(dir)));
    return s;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Group fsync of one directory: callers that arrive while a sync runs share the next one, which starts
 * after it (their renames may have missed the running one). N renames cost at most 2 syncs at a time.
 */
class DirSync {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const after = this.running.catch(() => undefined);
    this.queued = after.then(() => {
      this.queued = null;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<void> {
    const p = fsyncPath(this.dir).finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }
}
