/**
 * readDirStats lists a directory with every entry's lstat, sorted by name.
 * readSmallFiles reads and hashes many files of one directory in one
 * thread-pool job, with the checks of the per-file path: never through a
 * symlink, only the regular file listed (same inode), up to the size
 * listed; a file with extended attributes is left to the per-file path.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HUGE_PAGES, SMALL_REPLACED, SMALL_XATTRS, native, readDirStats, readSmallFiles } from './native.js';
import { BufferPool } from './util/buffer-pool.js';
import { prng, tempDir } from './testing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ino = (p: string): bigint => fs.lstatSync(p, { bigint: true }).ino;

describe('readDirStats', () => {
  it('lists every entry with its lstat, sorted by name bytes as Buffer.compare orders them', async () => {
    const dir = tempDir('kova-native-dir-');
    dirs.push(dir);
    // Prefixes, case, bytes past 0x7f (not valid UTF-8 too), and enough names to leave readdir's order.
    const names = [
      Buffer.from('a'),
      Buffer.from('ab'),
      Buffer.from('aB'),
      Buffer.from('B'),
      Buffer.from('é'),
      Buffer.from([0xff, 0x41]),
      Buffer.from([0x80]),
      ...Array.from({ length: 300 }, (_, i) => Buffer.from(`f${(i * 7919) % 1000}`)),
    ];
    const at = (n: Buffer): Buffer => Buffer.concat([Buffer.from(dir + '/'), n]);
    for (const [i, n] of names.entries()) fs.writeFileSync(at(n), 'x'.repeat(i));
    fs.mkdirSync(at(Buffer.from('sub')));
    fs.symlinkSync('a', at(Buffer.from('link')));
    names.push(Buffer.from('sub'), Buffer.from('link'));
    const fd = fs.openSync(dir, 'r');
    try {
      const entries = await readDirStats(fd);
      expect(entries.map((e) => e.name.toString('hex'))).toEqual([...names].sort(Buffer.compare).map((n) => n.toString('hex')));
      for (const e of entries) {
        const st = fs.lstatSync(at(e.name), { bigint: true });
        expect(e.error).toBe(0);
        expect([e.mode, e.size, e.nlink]).toEqual([Number(st.mode), Number(st.size), Number(st.nlink)]);
        expect([e.ino, e.mtimeNs, e.ctimeNs]).toEqual([st.ino, st.mtimeNs, st.ctimeNs]);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('lists an empty directory as no entries', async () => {
    const dir = tempDir('kova-native-dir-');
    dirs.push(dir);
    const fd = fs.openSync(dir, 'r');
    try {
      expect(await readDirStats(fd)).toEqual([]);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('readSmallFiles', () => {
  it('reads and hashes files, and reports each one it must not read', async () => {
    const dir = tempDir('kova-native-small-');
    dirs.push(dir);
    const at = (n: string): string => path.join(dir, n);
    const a = prng(1, 1500);
    const b = prng(2, 700);
    fs.writeFileSync(at('a'), a);
    fs.writeFileSync(at('b'), b);
    fs.writeFileSync(at('empty'), '');
    fs.writeFileSync(at('grown'), prng(3, 300));
    fs.writeFileSync(at('other'), 'x');
    fs.writeFileSync(at('gone'), 'y');
    fs.symlinkSync('a', at('link'));
    fs.mkdirSync(at('dir'));
    fs.writeFileSync(at('xattr'), 'z');
    let xattrs = true;
    try {
      native.setXattr(Buffer.from(at('xattr')), 'user.k', Buffer.from('v'));
    } catch {
      xattrs = false; // a filesystem without user xattrs: that case is not checked
    }
    const inos = new Map(['a', 'b', 'empty', 'grown', 'other', 'gone', 'dir', 'xattr'].map((n) => [n, ino(at(n))]));
    fs.rmSync(at('gone'));

    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      const list: Array<[string, number, bigint]> = [
        ['a', a.length, inos.get('a')!],
        ['b', b.length, inos.get('b')!],
        ['empty', 0, inos.get('empty')!],
        ['grown', 100, inos.get('grown')!], // appended to since it was listed: the listed size is read
        ['other', 1, inos.get('a')!], // another inode than listed
        ['gone', 1, inos.get('gone')!],
        ['link', 1, 0n],
        ['dir', 0, inos.get('dir')!],
        ['xattr', 1, inos.get('xattr')!],
      ];
      const r = await readSmallFiles(
        fd,
        list.map(([n]) => Buffer.from(n)),
        list.map(([, s]) => s),
        list.map(([, , i]) => i),
      );
      const got = (k: number): Buffer => r.data.subarray(r.start[k], r.start[k]! + r.status[k]!);
      const digest = (k: number): string => r.digests.toString('hex', 32 * k, 32 * k + 32);
      expect([...r.status.slice(0, 4)]).toEqual([a.length, b.length, 0, 100]);
      expect(got(0).equals(a)).toBe(true);
      expect(got(1).equals(b)).toBe(true);
      expect(got(3).equals(prng(3, 100))).toBe(true);
      expect(digest(0)).toBe(native.hash(a).toString('hex'));
      expect(digest(1)).toBe(native.hash(b).toString('hex'));
      expect(digest(2)).toBe(native.hash(Buffer.alloc(0)).toString('hex'));
      expect(r.status[4]).toBe(SMALL_REPLACED);
      expect(r.status[5]).toBe(-os.constants.errno.ENOENT);
      expect(r.status[6]).toBe(-os.constants.errno.ELOOP);
      expect(r.status[7]).toBe(SMALL_REPLACED);
      if (xattrs) expect(r.status[8]).toBe(SMALL_XATTRS);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("reads into the caller's buffer when it is large enough, else into a new one", async () => {
    const dir = tempDir('kova-native-small-');
    dirs.push(dir);
    const a = prng(4, 900);
    const b = prng(5, 600);
    fs.writeFileSync(path.join(dir, 'a'), a);
    fs.writeFileSync(path.join(dir, 'b'), b);
    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      const read = (into: Buffer) =>
        readSmallFiles(
          fd,
          [Buffer.from('a'), Buffer.from('b')],
          [a.length, b.length],
          [ino(path.join(dir, 'a')), ino(path.join(dir, 'b'))],
          into,
        );
      const reused = Buffer.alloc(4096, 0xee);
      const r = await read(reused);
      expect(r.data).toBe(reused);
      expect(r.data.subarray(r.start[1], r.start[1]! + b.length).equals(b)).toBe(true);
      expect(reused.subarray(0, a.length).equals(a)).toBe(true);
      const small = Buffer.alloc(1000, 0xee);
      const r2 = await read(small);
      expect(r2.data).not.toBe(small);
      expect(small.equals(Buffer.alloc(1000, 0xee))).toBe(true); // left untouched
      expect(r2.data.subarray(0, a.length).equals(a)).toBe(true);
      expect(r2.data.subarray(r2.start[1], r2.start[1]! + b.length).equals(b)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('rejects a job whose arrays do not agree', () => {
    expect(() =>
      native.readSmallFiles(
        0,
        {
          names: Buffer.from('a\0'),
          sizes: Float64Array.of(10),
          inos: BigUint64Array.of(1n),
          data: Buffer.alloc(5),
          status: new Int32Array(1),
          digests: Buffer.alloc(32),
        },
        () => undefined,
      ),
    ).toThrow(/inconsistent/);
  });
});

/** Anonymous memory of this process backed by huge pages, in bytes. */
function anonHugePages(): number {
  const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
  if (!m) throw new Error('no AnonHugePages in /proc/self/smaps_rollup');
  return Number(m[1]) * 1024;
}

const HUGE = 2 * 1024 * 1024;
const thp = ((): boolean => {
  try {
    return !fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]');
  } catch {
    return false;
  }
})();

describe('hugeOffset', () => {
  it('cuts a large buffer at a 2 MiB boundary, aligned for direct I/O', () => {
    const raw = Buffer.allocUnsafeSlow(5 * HUGE);
    const at = native.hugeOffset(raw);
    expect(at).toBeLessThan(HUGE);
    const cut = raw.subarray(at);
    // From the boundary, the next one is 0 bytes on, and 2 MiB minus a page from one page further.
    expect(native.hugeOffset(cut)).toBe(0);
    expect(native.hugeOffset(cut.subarray(4096))).toBe(HUGE - 4096);
    expect(native.alignOffset(cut)).toBe(0);
  });

  it('gives a buffer too small for a huge page the offset alignOffset gives', () => {
    const raw = Buffer.allocUnsafeSlow(64 * 1024);
    expect(native.hugeOffset(raw)).toBe(native.alignOffset(raw));
    expect(native.hugeOffset(raw.subarray(1))).toBe(native.alignOffset(raw.subarray(1)));
  });

  it.runIf(thp)('has the kernel back a HUGE_PAGES pool buffer with huge pages once it is filled', () => {
    const pool = new BufferPool(8 * 1024 * 1024, 1, HUGE_PAGES);
    const before = anonHugePages();
    const a = pool.acquire();
    expect(a.length).toBe(8 * 1024 * 1024);
    expect(native.hugeOffset(a)).toBe(0);
    a.fill(7);
    // Four huge pages; one may fall back to small pages if the kernel has no free 2 MiB at hand.
    expect(anonHugePages() - before).toBeGreaterThanOrEqual(3 * HUGE);
    pool.release(a);
    expect(pool.acquire()).toBe(a);
  });
});
