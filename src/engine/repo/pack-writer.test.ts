/**
 * A write that fails (disk full) while a snapshot writes its packs: the pack
 * writer reports that one error to its callers and starts no further pack,
 * nothing rejects unhandled on the way, the snapshot fails with DISK_FULL,
 * and the repository is left with exactly the files it had before.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskFullError } from '../../core/errors.js';
import { BlobType, Compression } from '../format/blob.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { prng, tempDir } from '../testing.js';
import { PackWriter } from './pack-writer.js';
import { Repository } from './repository.js';

const INIT = { packSize: 64 * 1024, chunker: { minSize: 4096, avgSize: 16384, maxSize: 65536 } };

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
const dirs: string[] = [];

beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** settled waits long enough for a stray rejection to be reported. */
const settled = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

function snapshot(storage: MemoryStorage): Map<string, Buffer> {
  return new Map([...storage.files].map(([k, v]) => [k, Buffer.from(v)]));
}

describe('PackWriter when a write fails', () => {
  it('rejects with the first error, once per caller, and starts no pack after it', async () => {
    const storage = new MemoryStorage();
    storage.failWritesFrom = 2;
    const writer = new PackWriter(storage, 16 * 1024, () => undefined, 2);
    const errors: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      try {
        await writer.add(BlobType.Data, i.toString(16).padStart(64, '0'), prng(i, 8 * 1024), Compression.None, 8 * 1024);
      } catch (err) {
        errors.push(err);
        break;
      }
    }
    const flushErr = await writer.flush().then(
      () => null,
      (err: unknown) => err,
    );
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOSPC');
    // flush reports the same error, not a new one.
    expect(flushErr).toBe(errors[0]);
    const attempted = storage.writes;
    // Nothing more is written: adding again, flushing again, discarding.
    await expect(writer.add(BlobType.Data, 'ff'.repeat(32), prng(99, 8 * 1024), Compression.None, 8 * 1024)).rejects.toBe(errors[0]);
    await writer.discard();
    await settled();
    expect(storage.writes).toBe(attempted);
    expect(storage.writes).toBeLessThanOrEqual(3); // the failed one and at most one more already in flight
    expect(unhandled).toEqual([]);
  });
});

describe('a snapshot whose writes start failing', () => {
  for (const [what, from] of [
    ['the lock', 1],
    ['the first pack', 2],
    ['a pack in the middle', 6],
    ['late (index or record)', 0],
  ] as const) {
    it(`fails with DISK_FULL, leaves the repository as it was, no unhandled rejection: ${what}`, async () => {
      const src = tempDir('kova-pw-src-');
      dirs.push(src);
      // Large files (several read blocks each) and small ones, incompressible.
      fs.writeFileSync(path.join(src, 'big'), randomBytes(9 * 1024 * 1024));
      for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, `small${i}`), randomBytes(20_000));
      const storage = new MemoryStorage();
      const repo = await Repository.create(storage, INIT);
      const first = await repo.snapshot(src, { label: 'first' });
      fs.writeFileSync(path.join(src, 'big'), randomBytes(9 * 1024 * 1024));
      fs.writeFileSync(path.join(src, 'small0'), randomBytes(20_000));
      const before = snapshot(storage);

      let failFrom: number = from;
      if (from === 0) {
        // Count the writes of a complete run, then fail the last two (index, record).
        const probe = new MemoryStorage();
        for (const [k, v] of before) probe.files.set(k, Buffer.from(v));
        await (await Repository.openStorage(probe)).snapshot(src, { parent: first.id });
        failFrom = probe.writes - 1;
      }
      storage.failWritesFrom = storage.writes + failFrom;
      const err = await repo.snapshot(src, { parent: first.id }).then(
        () => null,
        (e: unknown) => e,
      );
      storage.failWritesFrom = null;
      await settled();
      expect(err).toBeInstanceOf(DiskFullError);
      expect((err as DiskFullError).code).toBe('DISK_FULL');
      expect((err as DiskFullError).message).toMatch(/^the disk holding the repository is full/);
      expect(unhandled).toEqual([]);
      // Same files, same bytes: no pack, index or record of the failed snapshot.
      const after = snapshot(storage);
      expect([...after.keys()].filter((k) => !k.startsWith('locks/'))).toEqual([...before.keys()].filter((k) => !k.startsWith('locks/')));
      for (const [k, v] of before) if (!k.startsWith('locks/')) expect(after.get(k)?.equals(v), k).toBe(true);
      // And the repository works: a snapshot now succeeds and verifies.
      await repo.snapshot(src, { parent: first.id });
      expect((await repo.verify({ readData: true })).findings).toEqual([]);
    }, 120_000);
  }
});
