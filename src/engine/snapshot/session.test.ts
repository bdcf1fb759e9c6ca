/**
 * A session that adds many blobs lists them in several index files as its
 * packs are written (so it never holds a per-blob list for the whole
 * snapshot): the snapshot restores exactly from a freshly opened
 * repository, and a session that ends without a record removes every index
 * file and pack it wrote, including when an index write fails midway.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskFullError } from '../../core/errors.js';
import { decodeIndex } from '../format/index-format.js';
import { Repository } from '../repo/repository.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';

const INIT = { packSize: 8 * 1024, chunker: { minSize: 4096, avgSize: 16384, maxSize: 65536 } };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A directory of `n` distinct files of 1–3 KiB in a few subdirectories. */
function source(n: number): string {
  const src = tempDir('kova-session-src-');
  dirs.push(src);
  for (let i = 0; i < n; i++) {
    const dir = path.join(src, `d${i % 7}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}`), prng(i + 1, 1024 + ((i * 37) % 2048)));
  }
  return src;
}

const names = (storage: MemoryStorage, prefix: string): string[] =>
  [...storage.files.keys()].filter((k) => k.startsWith(prefix) && !k.endsWith('/.keep')).sort();

describe('a session adding many blobs', () => {
  it('lists them in several index files as packs are written, and restores exactly', async () => {
    const src = source(300);
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, INIT);
    const session = await repo.beginSnapshot('snapshot', { indexBlobs: 40 });
    const draft = await session.capture(src);
    // Index files appear during the capture, before commit.
    const during = names(storage, 'index/');
    expect(during.length).toBeGreaterThanOrEqual(5);
    const record = await session.commit(draft);
    const files = names(storage, 'index/');
    expect(files.length).toBeGreaterThan(during.length - 1);
    let listed = 0;
    const packs = new Set<string>();
    for (const f of files) {
      const idx = decodeIndex(storage.files.get(f)!, f);
      const blobs = idx.reduce((n, p) => n + p.blobs.length, 0);
      // One pack past the limit at most (a pack is listed whole).
      expect(blobs).toBeLessThan(40 + 40);
      listed += blobs;
      for (const p of idx) packs.add(p.id);
    }
    expect(listed).toBe(record.stats.newBlobs);
    expect([...packs].sort()).toEqual(
      names(storage, 'packs/')
        .map((n) => n.slice(n.lastIndexOf('/') + 1))
        .sort(),
    );

    const reopened = await Repository.openStorage(storage);
    expect((await reopened.verify({ readData: true })).findings).toEqual([]);
    const dst = path.join(tempDir('kova-session-dst-'), 'out');
    dirs.push(path.dirname(dst));
    await reopened.restore(record.id, dst);
    expect(compareTrees(describeTree(src), describeTree(dst))).toEqual([]);
  }, 120_000);

  it('removes every index file and pack it wrote when aborted after the capture', async () => {
    const src = source(200);
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, INIT);
    const before = [...storage.files.keys()].filter((k) => !k.startsWith('locks/')).sort();
    const session = await repo.beginSnapshot('snapshot', { indexBlobs: 25 });
    await session.capture(src);
    expect(names(storage, 'index/').length).toBeGreaterThanOrEqual(4);
    await session.abort();
    expect([...storage.files.keys()].filter((k) => !k.startsWith('locks/')).sort()).toEqual(before);
  }, 120_000);

  it('fails with DISK_FULL when an index write fails midway, and leaves the repository as it was', async () => {
    const src = source(200);
    const storage = new MemoryStorage();
    const repo = await Repository.create(storage, INIT);
    const before = [...storage.files.keys()].filter((k) => !k.startsWith('locks/')).sort();
    const session = await repo.beginSnapshot('snapshot', { indexBlobs: 25 });
    // Let the first index files through, then fail the writes.
    const write = storage.write.bind(storage);
    let indexes = 0;
    storage.write = async (name, data) => {
      if (name.startsWith('index/') && ++indexes === 3) {
        const err: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device');
        err.code = 'ENOSPC';
        throw err;
      }
      return write(name, data);
    };
    const err = await session.capture(src).then(
      () => null,
      (e: unknown) => e,
    );
    await session.abort();
    storage.write = write;
    expect(err).toBeInstanceOf(DiskFullError);
    expect([...storage.files.keys()].filter((k) => !k.startsWith('locks/')).sort()).toEqual(before);
  }, 120_000);
});
