/**
 * The restore's space check against real filesystems, loop-mounted ext4 and
 * XFS (needs root). For a snapshot mostly of small files, with long and
 * short names, a file with a hole, hard links, symlinks and a FIFO:
 *
 * - what restoreFootprint and spaceBound count is at least what a restore
 *   takes from the free space, and the footprint is not so much more that a
 *   restore which fits is refused (at most 1.5 times); a file's holes take
 *   no blocks (XFS preallocates past the end of a file being extended);
 * - with free space for the footprint but not for the bound, the check reads
 *   the trees and the restore goes through;
 * - with less free space than the restore takes, or fewer free inodes
 *   than it creates entries (ext4 made with few), it is refused with
 *   INSUFFICIENT_SPACE before anything is written.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsufficientSpaceError } from '../src/core/errors.js';
import type { SnapshotRecord } from '../src/engine/format/snapshot-record.js';
import { Repository } from '../src/engine/repo/repository.js';
import { restoreFootprint, spaceBound } from '../src/engine/restore/space.js';
import { prng } from '../src/engine/testing.js';

const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
}

/** free returns the bytes available on the filesystem of `dir` once everything written is on disk. */
function free(dir: string): number {
  execFileSync('sync', ['-f', dir]);
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize;
}

/** makeSource writes the tree the snapshot is taken of. */
function makeSource(src: string): void {
  const long = 'n'.repeat(190);
  for (let d = 0; d < 20; d++) {
    const dir = path.join(src, `dir${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 100; i++) {
      const size = (d * 100 + i) % 3 === 0 ? 0 : ((d * 7919 + i * 104_729) % 1536) + 1;
      const name = i % 2 === 0 ? `f${i}` : `${long}${i}`;
      fs.writeFileSync(path.join(dir, name), prng(d * 1000 + i, size));
    }
  }
  fs.mkdirSync(path.join(src, 'empty'));
  const fd = fs.openSync(path.join(src, 'holes'), 'w');
  fs.writeSync(fd, prng(1, MiB), 0, MiB, 0);
  fs.writeSync(fd, prng(2, MiB), 0, MiB, 2 * MiB + 1234);
  fs.ftruncateSync(fd, 6 * MiB);
  fs.closeSync(fd);
  fs.writeFileSync(path.join(src, 'hard'), prng(3, 9000));
  fs.linkSync(path.join(src, 'hard'), path.join(src, 'dir0', 'hard2'));
  fs.symlinkSync('dir0/f0', path.join(src, 'short-link'));
  fs.symlinkSync(`${long}/${long}`, path.join(src, 'long-link'));
  execFileSync('mkfifo', [path.join(src, 'fifo')]);
}

let work = '';
let repo: Repository | null = null;
let snap: SnapshotRecord;

describe.skipIf(!isRoot)('the restore space check on real filesystems (loop-mounted; needs root)', () => {
  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-space-'));
    const src = path.join(work, 'src');
    makeSource(src);
    repo = await Repository.init(path.join(work, 'repo'));
    snap = await repo.snapshot(src);
  }, 120_000);

  afterAll(async () => {
    await repo?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }, 60_000);

  /** mounted makes a loop-mounted filesystem (`mkfs` with `args`) for a describe block and unmounts it after. */
  function mounted(name: string, mkfs: string, args: string[]): () => string {
    let mnt = '';
    beforeAll(() => {
      const img = path.join(work, `${name}.img`);
      mnt = path.join(work, `mnt-${name}`);
      fs.mkdirSync(mnt);
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 512 * MiB);
      sh(mkfs, [...args, img]);
      sh('mount', ['-o', 'loop', img, mnt]);
    }, 120_000);
    afterAll(() => {
      if (mnt && spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
    }, 60_000);
    return () => mnt;
  }

  for (const type of ['ext4', 'xfs'] as const) {
    describe(type, () => {
      const at = mounted(type, `mkfs.${type}`, type === 'ext4' ? ['-q', '-m', '0'] : ['-q']);
      let mnt = '';
      beforeAll(() => {
        mnt = at();
      });

      let used = 0;
      let footprint = 0;

      it('counts at least what the restore takes, and at most 1.5 times it; holes stay holes', async () => {
        const before = free(mnt);
        const dst = path.join(mnt, 'measured');
        await repo!.restore(snap, dst, { checkSpace: false });
        used = before - free(mnt);
        footprint = (await restoreFootprint(repo!, snap.root)).bytes;
        expect(used).toBeGreaterThan(5 * MiB); // the restore did land
        expect(footprint).toBeGreaterThanOrEqual(used);
        expect(spaceBound(snap.stats).bytes).toBeGreaterThanOrEqual(used);
        expect(footprint / used).toBeLessThanOrEqual(1.5);
        // Holes stay holes: the file takes the 513 blocks its 2 MiB of data touch.
        expect(fs.statSync(path.join(dst, 'holes')).blocks * 512).toBe(513 * 4096);
        fs.rmSync(dst, { recursive: true });
      });

      it('lets a restore go on when its footprint fits though the bound does not', async () => {
        const filler = path.join(mnt, 'filler');
        const dst = path.join(mnt, 'fits');
        try {
          // Leave the footprint and 256 KiB.
          sh('fallocate', ['-l', String(free(mnt) - footprint - 256 * 1024), filler]);
          const left = free(mnt);
          expect(left).toBeGreaterThanOrEqual(footprint);
          expect(spaceBound(snap.stats).bytes).toBeGreaterThan(left); // so the trees are read
          await repo!.restore(snap, dst);
          expect(fs.readFileSync(path.join(dst, 'dir0', 'f2'))).toEqual(fs.readFileSync(path.join(work, 'src', 'dir0', 'f2')));
          expect(fs.readdirSync(path.join(dst, 'dir19'))).toHaveLength(100);
        } finally {
          fs.rmSync(dst, { recursive: true, force: true });
          fs.rmSync(filler, { force: true });
        }
      });

      it('refuses a restore that cannot fit before writing anything', async () => {
        const filler = path.join(mnt, 'filler');
        const dst = path.join(mnt, 'refused');
        try {
          sh('fallocate', ['-l', String(free(mnt) - Math.floor(used * 0.8)), filler]);
          const err = await repo!.restore(snap, dst).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(InsufficientSpaceError);
          expect((err as InsufficientSpaceError).code).toBe('INSUFFICIENT_SPACE');
          expect(fs.existsSync(dst)).toBe(false);
        } finally {
          fs.rmSync(dst, { recursive: true, force: true });
          fs.rmSync(filler, { force: true });
        }
      });
    });
  }

  describe('ext4 with few inodes', () => {
    const at = mounted('ext4-few-inodes', 'mkfs.ext4', ['-q', '-m', '0', '-N', '64']);

    it('refuses a restore with more entries than free inodes, before writing anything', async () => {
      const mnt = at();
      const st = fs.statfsSync(mnt);
      expect(st.ffree).toBeLessThan(snap.stats.files); // the bytes fit, the inodes do not
      expect(st.bavail * st.bsize).toBeGreaterThan(spaceBound(snap.stats).bytes);
      const dst = path.join(mnt, 'refused');
      const err = await repo!.restore(snap, dst).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InsufficientSpaceError);
      expect((err as InsufficientSpaceError).message).toMatch(
        /not enough free inodes for the restore: it creates \d+ files and directories/,
      );
      const details = (err as InsufficientSpaceError).details as { neededInodes: number; freeInodes: number };
      expect(details.freeInodes).toBe(st.ffree);
      expect(details.neededInodes).toBeGreaterThan(details.freeInodes);
      expect(fs.existsSync(dst)).toBe(false);
    });
  });
});
