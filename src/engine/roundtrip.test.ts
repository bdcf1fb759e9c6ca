/**
 * Round trips through a real repository in temp directories: whatever tree is
 * captured is restored with every attribute (type, mode incl. setuid/setgid/
 * sticky, owner, nanosecond mtime, size, content, symlink target, device
 * number, xattrs, hardlinks), incrementally captured changes included;
 * sparse files stay sparse; sockets are skipped and reported.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { S_IFBLK, S_IFCHR, S_IFIFO } from './fsx/fsx.js';
import { native, setTimesNs } from './native.js';
import { SCAN_START_MARGIN_MS } from './snapshot/archiver.js';
import { Repository } from './repo/repository.js';
import { type EntryDesc, compareTrees, describeTree, prng, tempDir } from './testing.js';

const SMALL_CHUNKS = { minSize: 4096, avgSize: 16384, maxSize: 65536 };
const PACK_SIZE = 256 * 1024;

/** settle waits past the archiver's scan-start margin, so files written just
 * before a snapshot count as settled (not "racily clean") for the next one. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SCAN_START_MARGIN_MS + 10));

const cleanups: string[] = [];
afterEach(() => {
  for (const d of cleanups.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const d = tempDir('kova-rt-');
  cleanups.push(d);
  return d;
}

function initRepo(dir: string): Promise<Repository> {
  return Repository.init(dir, { chunker: SMALL_CHUNKS, packSize: PACK_SIZE });
}

const join = (dir: Buffer, name: Buffer | string): Buffer => Buffer.concat([dir, Buffer.from('/'), Buffer.from(name)]);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every difference between two trees, as a readable list (empty when equal). */
function diffTrees(a: string, b: string): string[] {
  return compareTrees(describeTree(a), describeTree(b));
}

/* ---- random trees ---------------------------------------------------------------- */

type Kind = 'dir' | 'file' | 'symlink' | 'fifo' | 'hardlink';
type ContentKind = 'random' | 'zeros' | 'sparse';

interface XattrSpec {
  readonly ns: 'user' | 'trusted';
  readonly key: string;
  readonly value: Uint8Array;
}

interface EntrySpec {
  readonly kind: Kind;
  readonly parent: number;
  readonly name: Uint8Array;
  readonly fileMode: number;
  readonly dirMode: number;
  readonly fifoMode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeSec: number;
  readonly mtimeNsec: number;
  readonly xattrs: readonly XattrSpec[];
  readonly size: number;
  readonly content: ContentKind;
  readonly seed: number;
  readonly target: Uint8Array;
  readonly of: number;
}

const idArb = fc.oneof(fc.constantFrom(0, 1, 1000, 65534, 2 ** 31 - 2, 4294967294), fc.nat({ max: 100_000 }));
const xattrArb: fc.Arbitrary<XattrSpec> = fc.record({
  ns: fc.constantFrom('user' as const, 'trusted' as const),
  key: fc.constantFrom('a', 'b', 'mime_type', 'kova.test', 'x-y'),
  value: fc.uint8Array({ maxLength: 80 }),
});
const nameArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 14 }),
  fc.string({ minLength: 1, maxLength: 14 }).map((s) => new Uint8Array(Buffer.from(s))),
);
const entryArb: fc.Arbitrary<EntrySpec> = fc.record({
  kind: fc.oneof(
    { arbitrary: fc.constant<Kind>('file'), weight: 5 },
    { arbitrary: fc.constant<Kind>('dir'), weight: 3 },
    { arbitrary: fc.constant<Kind>('symlink'), weight: 1 },
    { arbitrary: fc.constant<Kind>('fifo'), weight: 1 },
    { arbitrary: fc.constant<Kind>('hardlink'), weight: 1 },
  ),
  parent: fc.nat(),
  name: nameArb,
  fileMode: fc.constantFrom(0o644, 0o600, 0o755, 0o4755, 0o2755, 0o6755, 0o1644, 0o000, 0o444, 0o7777, 0o4000),
  dirMode: fc.constantFrom(0o755, 0o700, 0o1777, 0o2775, 0o000, 0o555, 0o3777),
  fifoMode: fc.constantFrom(0o644, 0o600, 0o666, 0o1666, 0o000),
  uid: idArb,
  gid: idArb,
  // Past 2262 a time no longer fits in 64-bit nanoseconds (ext4 goes to 2446).
  mtimeSec: fc.oneof(fc.integer({ min: -2_000_000_000, max: 4_000_000_000 }), fc.constantFrom(9_300_000_000, 14_000_000_000)),
  mtimeNsec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
  xattrs: fc.array(xattrArb, { maxLength: 3 }),
  size: fc.oneof(
    { arbitrary: fc.constant(0), weight: 2 },
    { arbitrary: fc.integer({ min: 1, max: 4096 }), weight: 4 },
    { arbitrary: fc.integer({ min: 4097, max: 120_000 }), weight: 3 },
    { arbitrary: fc.integer({ min: 256 * 1024 + 1, max: 600_000 }), weight: 1 },
  ),
  content: fc.constantFrom<ContentKind>('random', 'random', 'random', 'zeros', 'sparse'),
  seed: fc.integer({ min: 0, max: 20 }),
  target: fc.oneof(
    fc.constantFrom('/etc', '..', '../../..', '/', 'dangling/nowhere', '.', '/etc/passwd').map((s) => new Uint8Array(Buffer.from(s))),
    fc.uint8Array({ minLength: 1, maxLength: 60 }),
  ),
  of: fc.nat(),
});
const rootArb = fc.record({
  mode: fc.constantFrom(0o755, 0o700, 0o1777, 0o2750),
  uid: idArb,
  gid: idArb,
  mtimeSec: fc.integer({ min: 0, max: 4_000_000_000 }),
  mtimeNsec: fc.integer({ min: 0, max: 999_999_999 }),
  xattrs: fc.array(xattrArb, { maxLength: 2 }),
});
type RootSpec = typeof rootArb extends fc.Arbitrary<infer T> ? T : never;

interface Built {
  files: number;
  dirs: number;
  symlinks: number;
  fifos: number;
}

function writeFileContent(p: Buffer, e: EntrySpec): void {
  const fd = fs.openSync(p, 'wx', 0o600);
  try {
    if (e.size === 0) return;
    if (e.content === 'random') {
      fs.writeSync(fd, prng(e.seed * 7919 + e.size, e.size), 0, e.size, 0);
    } else if (e.content === 'zeros') {
      fs.writeSync(fd, Buffer.alloc(e.size), 0, e.size, 0);
    } else {
      // Some data in the middle, a hole before it and after it.
      const at = Math.floor(e.size / 2);
      const n = Math.min(5000, e.size - at);
      fs.writeSync(fd, prng(e.seed + 1, n), 0, n, at);
      fs.ftruncateSync(fd, e.size);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function setXattrs(p: Buffer, xattrs: readonly XattrSpec[], userAllowed: boolean): void {
  for (const x of xattrs) {
    const ns = userAllowed ? x.ns : 'trusted';
    native.setXattr(p, `${ns}.${x.key}`, x.value);
  }
}

/** buildTree creates the entries below `root` (which exists) and sets every attribute. */
function buildTree(rootPath: string, root: RootSpec, entries: readonly EntrySpec[]): Built {
  const rootBuf = Buffer.from(rootPath);
  const dirs: Buffer[] = [rootBuf];
  const files: Buffer[] = [];
  const made: Array<{ p: Buffer; e: EntrySpec }> = [];
  const built: Built = { files: 0, dirs: 1, symlinks: 0, fifos: 0 };
  entries.forEach((e, i) => {
    const parent = dirs[e.parent % dirs.length]!;
    // Any bytes but NUL and "/"; the suffix makes names unique and never "." or "..".
    const name = Buffer.concat([Buffer.from(e.name.map((b) => (b === 0 || b === 0x2f ? 0x5f : b))), Buffer.from(`~${i}`)]);
    const p = join(parent, name);
    switch (e.kind) {
      case 'dir':
        fs.mkdirSync(p);
        dirs.push(p);
        built.dirs++;
        break;
      case 'file':
        writeFileContent(p, e);
        files.push(p);
        built.files++;
        break;
      case 'symlink':
        fs.symlinkSync(Buffer.from(e.target.map((b) => (b === 0 ? 0x2e : b))), p);
        built.symlinks++;
        break;
      case 'fifo':
        native.mknod(p, S_IFIFO | 0o600, 0, 0);
        built.fifos++;
        break;
      case 'hardlink':
        if (files.length > 0) {
          fs.linkSync(files[e.of % files.length]!, p);
          built.files++;
          return; // the inode's attributes are set through its first name
        }
        writeFileContent(p, { ...e, size: 0 });
        files.push(p);
        built.files++;
        break;
    }
    made.push({ p, e });
  });
  // Attributes: owner before mode (chown clears setuid/setgid), xattrs, then
  // times last of all (creating entries changes their directory's mtime).
  for (const { p, e } of made) {
    setXattrs(p, e.xattrs, e.kind === 'file' || e.kind === 'dir' || e.kind === 'hardlink');
    fs.lchownSync(p, e.uid, e.gid);
    if (e.kind === 'file' || e.kind === 'hardlink') fs.chmodSync(p, e.fileMode);
    if (e.kind === 'dir') fs.chmodSync(p, e.dirMode);
    if (e.kind === 'fifo') fs.chmodSync(p, e.fifoMode);
  }
  setXattrs(rootBuf, root.xattrs, true);
  fs.chownSync(rootBuf, root.uid, root.gid);
  fs.chmodSync(rootBuf, root.mode);
  for (const { p, e } of made) setTimesNs(p, 1n, BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec));
  setTimesNs(rootBuf, 1n, BigInt(root.mtimeSec) * 1_000_000_000n + BigInt(root.mtimeNsec));
  return built;
}

describe('round trip of random trees', () => {
  it('restores every entry with every attribute', async () => {
    await fc.assert(
      fc.asyncProperty(rootArb, fc.array(entryArb, { maxLength: 30 }), async (root, entries) => {
        const work = workDir();
        const src = path.join(work, 'src');
        fs.mkdirSync(src);
        const built = buildTree(src, root, entries);
        const before = describeTree(src);
        const repo = await initRepo(path.join(work, 'repo'));
        try {
          const snap = await repo.snapshot(src, { label: 'random' });
          expect(snap.stats).toMatchObject({
            files: built.files,
            dirs: built.dirs,
            symlinks: built.symlinks,
            specials: built.fifos,
            skipped: 0,
          });
          expect(snap.skippedEntries).toEqual([]);
          // Capturing must not change the source.
          expect(compareTrees(before, describeTree(src))).toEqual([]);
          const dst = path.join(work, 'dst');
          const result = await repo.restore(snap.id, dst);
          expect(result.skipped).toEqual([]);
          expect(compareTrees(before, describeTree(dst))).toEqual([]);
          // A repository reopened from disk restores the same tree.
          const again = await Repository.open(path.join(work, 'repo'));
          try {
            await again.restore(snap.id, path.join(work, 'dst2'));
          } finally {
            await again.close();
          }
          expect(diffTrees(dst, path.join(work, 'dst2'))).toEqual([]);
          const report = await repo.verify({ readData: true });
          expect(report.findings).toEqual([]);
        } finally {
          await repo.close();
          fs.rmSync(work, { recursive: true, force: true });
        }
      }),
      { numRuns: 20 },
    );
  });

  it('restores a tree with hardlinks across directories as links (same inode)', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
    fs.mkdirSync(path.join(src, 'c'));
    fs.writeFileSync(path.join(src, 'a/b/orig'), prng(1, 100_000));
    fs.linkSync(path.join(src, 'a/b/orig'), path.join(src, 'c/link1'));
    fs.linkSync(path.join(src, 'a/b/orig'), path.join(src, 'link2'));
    fs.writeFileSync(path.join(src, 'c/other'), prng(1, 100_000)); // same content, another inode
    fs.linkSync(path.join(src, 'c/other'), path.join(src, 'c/other2'));
    fs.chmodSync(path.join(src, 'a/b/orig'), 0o4711);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      expect(diffTrees(src, dst)).toEqual([]);
      const ino = (p: string): bigint => fs.lstatSync(path.join(dst, p), { bigint: true }).ino;
      expect(ino('c/link1')).toBe(ino('a/b/orig'));
      expect(ino('link2')).toBe(ino('a/b/orig'));
      expect(ino('c/other2')).toBe(ino('c/other'));
      expect(ino('c/other')).not.toBe(ino('a/b/orig'));
      expect(fs.lstatSync(path.join(dst, 'link2')).nlink).toBe(3);
    } finally {
      await repo.close();
    }
  });
});

/* ---- incremental ------------------------------------------------------------------ */

describe('incremental snapshots', () => {
  it('detects a same-size change with the mtime put back (via ctime), renames, deletions and additions', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'd/e'), { recursive: true });
    const sizes: Record<string, number> = {
      a: 10_000,
      b: 100_000,
      c: 300_000,
      'd/x': 5_000,
      'd/e/y': 70_000,
      'd/f': 20_000,
      g: 30_000,
      h: 200_000,
      'd/e/big': 400_000,
      empty: 0,
    };
    Object.entries(sizes).forEach(([p, n], i) => fs.writeFileSync(path.join(src, p), prng(i + 100, n)));
    fs.symlinkSync('d/x', path.join(src, 'sl'));
    native.mknod(path.join(src, 'fifo'), S_IFIFO | 0o640, 0, 0);
    setTimesNs(path.join(src, 'h'), 1_000_000_000_123n, 1_500_000_000_987_654_321n);
    setTimesNs(path.join(src, 'd/e/big'), 1n, 1_600_000_000_000_000_001n);
    // Files changed in the same clock tick as a scan's start are re-read by the next one:
    // let the clock move on.
    await sleep(30);
    const original = describeTree(src);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      await settle();
      const first = await repo.snapshot(src, { label: 'first' });
      expect(first.stats.filesReused).toBe(0);
      expect(first.stats.bytesRead).toBe(Object.values(sizes).reduce((a, b) => a + b, 0));

      // Same size, new content, mtime restored: only the ctime tells.
      const hPath = path.join(src, 'h');
      const hBefore = fs.lstatSync(hPath, { bigint: true });
      const fd = fs.openSync(hPath, 'r+');
      fs.writeSync(fd, prng(555, 4096), 0, 4096, 50_000);
      fs.closeSync(fd);
      setTimesNs(hPath, hBefore.atimeNs, hBefore.mtimeNs);
      // The same on a file read through the large-file path (extents).
      const bigPath = path.join(src, 'd/e/big');
      const bigBefore = fs.lstatSync(bigPath, { bigint: true });
      const fd2 = fs.openSync(bigPath, 'r+');
      fs.writeSync(fd2, Buffer.from([1, 2, 3]), 0, 3, 399_000);
      fs.closeSync(fd2);
      setTimesNs(bigPath, bigBefore.atimeNs, bigBefore.mtimeNs);
      const hAfter = fs.lstatSync(hPath, { bigint: true });
      expect(hAfter.mtimeNs).toBe(hBefore.mtimeNs);
      expect(hAfter.size).toBe(hBefore.size);
      expect(hAfter.ctimeNs).not.toBe(hBefore.ctimeNs);

      fs.renameSync(path.join(src, 'd/f'), path.join(src, 'd/f-renamed'));
      fs.rmSync(path.join(src, 'g'));
      fs.writeFileSync(path.join(src, 'd/e/new'), prng(777, 12_345));
      await sleep(30);
      const modified = describeTree(src);

      await settle();
      const second = await repo.snapshot(src, { parent: first.id, label: 'second' });
      // Unchanged: a, b, c, d/x, d/e/y, empty. Read again: h, d/e/big (changed),
      // d/f-renamed (a new name) and d/e/new.
      expect(second.stats.files).toBe(10);
      expect(second.stats.filesReused).toBe(6);
      expect(second.stats.bytesRead).toBe(sizes.h! + sizes['d/e/big']! + sizes['d/f']! + 12_345);
      expect(second.parent).toBe(first.id);

      const dst2 = path.join(work, 'dst2');
      await repo.restore(second.id, dst2);
      expect(compareTrees(modified, describeTree(dst2))).toEqual([]);
      expect(fs.readFileSync(path.join(dst2, 'h')).equals(fs.readFileSync(hPath))).toBe(true);
      expect(fs.readFileSync(path.join(dst2, 'd/e/big')).equals(fs.readFileSync(bigPath))).toBe(true);

      // The first snapshot still restores the original tree.
      const dst1 = path.join(work, 'dst1');
      await repo.restore(first.id, dst1);
      expect(compareTrees(original, describeTree(dst1))).toEqual([]);

      // Nothing changed since: everything is reused, nothing read.
      await settle();
      const third = await repo.snapshot(src, { parent: second.id });
      expect(third.stats.filesReused).toBe(10);
      expect(third.stats.bytesRead).toBe(0);
      expect(third.stats.newBlobs).toBe(0);
      const dst3 = path.join(work, 'dst3');
      await repo.restore(third.id, dst3);
      expect(compareTrees(modified, describeTree(dst3))).toEqual([]);

      // Deleting the first snapshot and collecting garbage keeps the others whole.
      await repo.deleteSnapshot(first.id);
      await repo.gc();
      const dst3b = path.join(work, 'dst3b');
      await repo.restore(third.id, dst3b);
      expect(compareTrees(modified, describeTree(dst3b))).toEqual([]);
      expect((await repo.verify({ readData: true })).findings.filter((f) => f.severity === 'error')).toEqual([]);
    } finally {
      await repo.close();
    }
  });

  it('detects changes of mode, owner and xattrs without a content change', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    for (const n of ['m', 'o', 'x', 'same']) fs.writeFileSync(path.join(src, n), prng(n.charCodeAt(0), 9000));
    await sleep(30);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      await settle();
      const first = await repo.snapshot(src);
      const keep = (p: string): bigint => fs.lstatSync(p, { bigint: true }).mtimeNs;
      const m = path.join(src, 'm');
      const o = path.join(src, 'o');
      const x = path.join(src, 'x');
      const [mt, ot, xt] = [keep(m), keep(o), keep(x)];
      fs.chmodSync(m, 0o4750);
      fs.chownSync(o, 4242, 4343);
      native.setXattr(x, 'user.added', Buffer.from('later'));
      setTimesNs(m, 1n, mt);
      setTimesNs(o, 1n, ot);
      setTimesNs(x, 1n, xt);
      await sleep(30);
      await settle();
      const second = await repo.snapshot(src, { parent: first.id });
      expect(second.stats.filesReused).toBe(1);
      const dst = path.join(work, 'dst');
      await repo.restore(second.id, dst);
      expect(diffTrees(src, dst)).toEqual([]);
    } finally {
      await repo.close();
    }
  });

  it('restores exactly after random modifications, reusing exactly the unchanged files', async () => {
    type Op = 'keep' | 'rewrite' | 'rename' | 'delete' | 'append' | 'chmod';
    const fileArb = fc.record({
      dir: fc.constantFrom('', 'p', 'p/q', 'r'),
      size: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 5001, max: 300_000 })),
      op: fc.constantFrom<Op>('keep', 'keep', 'keep', 'rewrite', 'rename', 'delete', 'append', 'chmod'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fileArb, { minLength: 1, maxLength: 15 }),
        fc.array(fc.integer({ min: 0, max: 50_000 }), { maxLength: 3 }),
        async (files, added) => {
          const work = workDir();
          const src = path.join(work, 'src');
          for (const d of ['p/q', 'r']) fs.mkdirSync(path.join(src, d), { recursive: true });
          const paths = files.map((f, i) => path.join(src, f.dir, `f${i}`));
          files.forEach((f, i) => fs.writeFileSync(paths[i]!, prng(i + 1, f.size)));
          await sleep(20);
          const original = describeTree(src);
          const repo = await initRepo(path.join(work, 'repo'));
          try {
            await settle();
            const first = await repo.snapshot(src);
            let expectRead = 0;
            let expectReused = 0;
            files.forEach((f, i) => {
              const p = paths[i]!;
              switch (f.op) {
                case 'keep':
                  expectReused++;
                  break;
                case 'rewrite': {
                  const st = fs.lstatSync(p, { bigint: true });
                  fs.writeFileSync(p, prng(i + 1000, f.size));
                  setTimesNs(p, st.atimeNs, st.mtimeNs);
                  expectRead += f.size;
                  break;
                }
                case 'rename':
                  fs.renameSync(p, `${p}-moved`);
                  expectRead += f.size;
                  break;
                case 'delete':
                  fs.rmSync(p);
                  break;
                case 'append':
                  fs.appendFileSync(p, 'more');
                  expectRead += f.size + 4;
                  break;
                case 'chmod':
                  fs.chmodSync(p, 0o600);
                  expectRead += f.size;
                  break;
              }
            });
            added.forEach((n, i) => fs.writeFileSync(path.join(src, 'r', `added${i}`), prng(9000 + i, n)));
            expectRead += added.reduce((a, b) => a + b, 0);
            await sleep(20);
            const modified = describeTree(src);
            await settle();
            const second = await repo.snapshot(src, { parent: first.id });
            expect(second.stats.filesReused).toBe(expectReused);
            expect(second.stats.bytesRead).toBe(expectRead);
            await repo.restore(second.id, path.join(work, 'dst2'));
            expect(compareTrees(modified, describeTree(path.join(work, 'dst2')))).toEqual([]);
            await repo.restore(first.id, path.join(work, 'dst1'));
            expect(compareTrees(original, describeTree(path.join(work, 'dst1')))).toEqual([]);
          } finally {
            await repo.close();
            fs.rmSync(work, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 10 },
    );
  });

  it('chunks a changed large file with its parent chunks as hints, exactly as a full read would', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    const MB = 1_000_000;
    const write = (name: string, data: Buffer): void => fs.writeFileSync(path.join(src, name), data);
    const patch = (name: string, at: number, data: Buffer): void => {
      const fd = fs.openSync(path.join(src, name), 'r+');
      fs.writeSync(fd, data, 0, data.length, at);
      fs.closeSync(fd);
    };
    write('rewritten', prng(1, 3 * MB));
    write('inserted', prng(2, 2 * MB));
    write('appended', prng(3, 1 * MB));
    write('truncated', prng(4, 1 * MB));
    const zeros = prng(5, 2 * MB);
    zeros.fill(0, 500_000, 900_000);
    write('zeros', zeros);
    // A sparse file: data, a hole, data.
    const sfd = fs.openSync(path.join(src, 'sparse'), 'w');
    fs.writeSync(sfd, prng(6, 600_000), 0, 600_000, 0);
    fs.writeSync(sfd, prng(7, 600_000), 0, 600_000, 4 * 1024 * 1024);
    fs.closeSync(sfd);

    const repo = await initRepo(path.join(work, 'repo'));
    try {
      await settle();
      const first = await repo.snapshot(src);

      // Pages rewritten in place, bytes inserted, appended, cut off, zeroed.
      for (const at of [0, 100_000, 1_500_000, 2_999_000]) patch('rewritten', at, prng(at + 11, 800));
      const ins = fs.readFileSync(path.join(src, 'inserted'));
      write('inserted', Buffer.concat([ins.subarray(0, 700_000), prng(12, 333), ins.subarray(700_000)]));
      fs.appendFileSync(path.join(src, 'appended'), prng(13, 300_000));
      fs.truncateSync(path.join(src, 'truncated'), 612_345);
      patch('zeros', 1_200_000, Buffer.alloc(100_000));
      patch('zeros', 850_000, prng(14, 10));
      patch('sparse', 4 * 1024 * 1024 + 300_000, prng(15, 50));
      await sleep(30);
      const modified = describeTree(src);
      await settle();

      const hinted = await repo.snapshot(src, { parent: first.id });
      const full = await repo.snapshot(src);
      expect(hinted.stats.bytesRead).toBe(full.stats.bytesRead);
      const contents = async (snap: typeof full): Promise<Map<string, unknown>> =>
        new Map((await repo.readTree(snap.root.subtree!)).map((n) => [n.name.toString(), n.content]));
      const a = await contents(hinted);
      const b = await contents(full);
      expect(a.size).toBe(6);
      for (const [name, content] of b) expect(a.get(name), name).toEqual(content);
      // Both restore to the source as it is now.
      const dst = path.join(work, 'dst');
      await repo.restore(hinted.id, dst);
      expect(compareTrees(modified, describeTree(dst))).toEqual([]);
      expect(fs.readFileSync(path.join(dst, 'rewritten')).equals(fs.readFileSync(path.join(src, 'rewritten')))).toBe(true);
    } finally {
      await repo.close();
    }
  });
});

describe('incremental snapshots across type changes and hardlinks', () => {
  it('restores entries whose type changed between snapshots', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'becomes-file'), { recursive: true });
    fs.writeFileSync(path.join(src, 'becomes-file/inner'), 'inner');
    fs.writeFileSync(path.join(src, 'becomes-dir'), prng(1, 20_000));
    fs.writeFileSync(path.join(src, 'becomes-link'), prng(2, 20_000));
    fs.symlinkSync('target', path.join(src, 'link-becomes-file'));
    native.mknod(path.join(src, 'fifo-becomes-file'), S_IFIFO | 0o600, 0, 0);
    await sleep(30);
    const original = describeTree(src);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      await settle();
      const first = await repo.snapshot(src);
      fs.rmSync(path.join(src, 'becomes-file'), { recursive: true });
      fs.writeFileSync(path.join(src, 'becomes-file'), 'now a file');
      fs.rmSync(path.join(src, 'becomes-dir'));
      fs.mkdirSync(path.join(src, 'becomes-dir'));
      fs.writeFileSync(path.join(src, 'becomes-dir/x'), prng(1, 20_000));
      fs.rmSync(path.join(src, 'becomes-link'));
      fs.symlinkSync('becomes-dir/x', path.join(src, 'becomes-link'));
      fs.rmSync(path.join(src, 'link-becomes-file'));
      fs.writeFileSync(path.join(src, 'link-becomes-file'), 'was a link');
      fs.rmSync(path.join(src, 'fifo-becomes-file'));
      fs.writeFileSync(path.join(src, 'fifo-becomes-file'), 'was a fifo');
      await sleep(30);
      const modified = describeTree(src);
      await settle();
      const second = await repo.snapshot(src, { parent: first.id });
      expect(second.stats.filesReused).toBe(0);
      await repo.restore(second.id, path.join(work, 'dst2'));
      expect(compareTrees(modified, describeTree(path.join(work, 'dst2')))).toEqual([]);
      await repo.restore(first.id, path.join(work, 'dst1'));
      expect(compareTrees(original, describeTree(path.join(work, 'dst1')))).toEqual([]);
    } finally {
      await repo.close();
    }
  });

  it('keeps hardlinks linked when their content is reused, and follows link-count changes', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'a'), { recursive: true });
    fs.mkdirSync(path.join(src, 'b'));
    fs.writeFileSync(path.join(src, 'a/kept'), prng(1, 40_000));
    fs.linkSync(path.join(src, 'a/kept'), path.join(src, 'b/kept-link'));
    fs.writeFileSync(path.join(src, 'a/unlinked'), prng(2, 30_000));
    fs.linkSync(path.join(src, 'a/unlinked'), path.join(src, 'b/unlinked-link'));
    fs.writeFileSync(path.join(src, 'a/gains-link'), prng(3, 10_000));
    await sleep(30);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      await settle();
      const first = await repo.snapshot(src);
      fs.rmSync(path.join(src, 'b/unlinked-link'));
      fs.linkSync(path.join(src, 'a/gains-link'), path.join(src, 'b/gained-link'));
      await sleep(30);
      const modified = describeTree(src);
      await settle();
      const second = await repo.snapshot(src, { parent: first.id });
      // Both names of a/kept are reused; a/unlinked and a/gains-link changed link count (ctime).
      expect(second.stats.filesReused).toBe(2);
      expect(second.stats.bytesRead).toBe(30_000 + 10_000);
      const dst = path.join(work, 'dst');
      await repo.restore(second.id, dst);
      expect(compareTrees(modified, describeTree(dst))).toEqual([]);
      const ino = (p: string): number => fs.lstatSync(path.join(dst, p)).ino;
      expect(ino('b/kept-link')).toBe(ino('a/kept'));
      expect(ino('b/gained-link')).toBe(ino('a/gains-link'));
      expect(fs.lstatSync(path.join(dst, 'a/unlinked')).nlink).toBe(1);
    } finally {
      await repo.close();
    }
  });
});

describe('named sources', () => {
  it('captures several directories under a synthetic root and restores all or one of them', async () => {
    const work = workDir();
    const one = path.join(work, 'vol-one');
    const two = path.join(work, 'vol-two');
    fs.mkdirSync(path.join(one, 'x'), { recursive: true });
    fs.writeFileSync(path.join(one, 'x/f'), prng(1, 90_000));
    fs.mkdirSync(two);
    fs.writeFileSync(path.join(two, 'g'), 'two');
    fs.chmodSync(two, 0o1770);
    setTimesNs(two, 1n, 1_234_000_000_000_000_001n);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot([
        { name: 'two', path: two },
        { name: 'one', path: one },
      ]);
      const all = path.join(work, 'all');
      await repo.restore(snap.id, all);
      expect(fs.readdirSync(all).sort()).toEqual(['one', 'two']);
      expect(diffTrees(one, path.join(all, 'one'))).toEqual([]);
      expect(diffTrees(two, path.join(all, 'two'))).toEqual([]);
      const only = path.join(work, 'only-two');
      await repo.restore(snap.id, only, { subpath: 'two' });
      expect(diffTrees(two, only)).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});

describe('chunk sizes the configuration allows', () => {
  const MiB = 1024 * 1024;
  // The default, and the largest chunks resolveGear accepts (maxSize 64 MiB):
  // each chunk spans several of the 8 MiB blocks files are read in.
  const configs = [
    { minSize: 256 * 1024, avgSize: MiB, maxSize: 4 * MiB },
    { minSize: 32 * MiB, avgSize: 32 * MiB, maxSize: 64 * MiB },
  ];
  for (const chunker of configs) {
    it(`round-trips a 72 MiB file with chunks of ${chunker.minSize / MiB}–${chunker.maxSize / MiB} MiB`, async () => {
      const work = workDir();
      const src = path.join(work, 'src');
      fs.mkdirSync(src);
      const fd = fs.openSync(path.join(src, 'big'), 'w');
      for (let i = 0; i < 9; i++) fs.writeSync(fd, prng(1000 + i, 8 * MiB));
      fs.closeSync(fd);
      const repo = await Repository.init(path.join(work, 'repo'), { chunker });
      try {
        const snap = await repo.snapshot(src);
        expect(snap.stats.bytesRead).toBe(72 * MiB);
        await repo.restore(snap.id, path.join(work, 'dst'));
        expect(diffTrees(src, path.join(work, 'dst'))).toEqual([]);
      } finally {
        await repo.close();
      }
    });
  }

  it('compresses past the inline budget on worker threads, reusing their buffers', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    // 48 MiB of unique but compressible bytes (16 letters): more than the
    // 32 MiB compressed inline, so workers compress the rest.
    const fd = fs.openSync(path.join(src, 'text'), 'w');
    for (let i = 0; i < 48; i++) {
      const b = prng(7000 + i, MiB);
      for (let k = 0; k < b.length; k++) b[k] = 0x61 + (b[k]! & 15);
      fs.writeSync(fd, b);
    }
    fs.closeSync(fd);
    const repo = await Repository.init(path.join(work, 'repo'), {});
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.bytesRead).toBe(48 * MiB);
      expect(snap.stats.storedBytes).toBeLessThan(0.7 * 48 * MiB);
      await repo.restore(snap.id, path.join(work, 'dst'));
      expect(diffTrees(src, path.join(work, 'dst'))).toEqual([]);
      const report = await repo.verify({ readData: true });
      expect(report.findings).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});

/* ---- sparse files ----------------------------------------------------------------- */

const BLOCK = 64 * 1024;

/**
 * sparseDigest hashes a file's content without reading its holes: blocks that
 * lie in holes are zeros by definition, so the digest covers the non-zero
 * blocks (with their index) and the size — the same for any layout of holes.
 */
function sparseDigest(p: string): string {
  const fd = fs.openSync(p, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const h = createHash('sha256').update(`size ${size}\n`);
    const buf = Buffer.alloc(BLOCK);
    let pos = 0;
    let lastBlock = -1;
    while (pos < size) {
      const start = native.seekData(fd, pos);
      if (start < 0 || start >= size) break;
      let end = native.seekHole(fd, start);
      if (end < 0 || end > size) end = size;
      for (let b = Math.floor(start / BLOCK); b * BLOCK < end; b++) {
        if (b <= lastBlock) continue;
        lastBlock = b;
        const n = fs.readSync(fd, buf, 0, Math.min(BLOCK, size - b * BLOCK), b * BLOCK);
        const block = buf.subarray(0, n);
        if (block.some((x) => x !== 0)) h.update(`block ${b}\n`).update(block);
      }
      pos = end;
    }
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** describeSparse is describeTree for a flat directory of sparse files, content by sparseDigest. */
function describeSparse(root: string): Map<string, EntryDesc> {
  const out = new Map<string, EntryDesc>();
  const desc = (p: string): EntryDesc => {
    const st = fs.lstatSync(p, { bigint: true });
    const d: EntryDesc = {
      type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other',
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: st.isFile() ? Number(st.size) : 0,
      allocated: Number(st.blocks) * 512,
    };
    if (st.isFile()) d.content = sparseDigest(p);
    return d;
  };
  out.set('', desc(root));
  for (const n of fs.readdirSync(root).sort()) out.set(Buffer.from(n).toString('hex'), desc(path.join(root, n)));
  return out;
}

describe('sparse files', () => {
  it('round-trips a 1 GiB file holding 1 MiB of data: reads ~1 MiB, restores sparse', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    const big = path.join(src, 'disk.img');
    const MiB = 1024 * 1024;
    const fd = fs.openSync(big, 'w');
    const extents = [10 * MiB, 300 * MiB + 4096, 700 * MiB, 1000 * MiB];
    extents.forEach((at, i) => fs.writeSync(fd, prng(i + 50, 256 * 1024), 0, 256 * 1024, at));
    fs.ftruncateSync(fd, 1024 * MiB);
    fs.closeSync(fd);
    // A file that ends with data after a hole, and one that is only a hole.
    const tailData = path.join(src, 'tail-data');
    const fd2 = fs.openSync(tailData, 'w');
    fs.writeSync(fd2, prng(9, 1000), 0, 1000, 64 * MiB - 1000);
    fs.closeSync(fd2);
    fs.writeFileSync(path.join(src, 'all-hole'), '');
    fs.truncateSync(path.join(src, 'all-hole'), 100 * MiB);
    setTimesNs(big, 1n, 1_234_567_890_123_456_789n);
    const before = describeSparse(src);
    expect(before.get(Buffer.from('disk.img').toString('hex'))!.allocated).toBeLessThanOrEqual(2 * MiB);

    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.bytes).toBe(1024 * MiB + 64 * MiB + 100 * MiB);
      // Only the data extents are read (block-granular), not the holes.
      expect(snap.stats.bytesRead).toBeGreaterThanOrEqual(MiB + 1000);
      expect(snap.stats.bytesRead).toBeLessThanOrEqual(MiB + 2 * 64 * 1024);
      expect(snap.stats.newBytes).toBeLessThan(2 * MiB);

      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      const after = describeSparse(dst);
      expect(compareTrees(before, after)).toEqual([]);
      const allocated = (n: string): number => after.get(Buffer.from(n).toString('hex'))!.allocated;
      expect(allocated('disk.img')).toBeLessThanOrEqual(2 * MiB + 256 * 1024);
      expect(allocated('tail-data')).toBeLessThanOrEqual(64 * 1024);
      expect(allocated('all-hole')).toBeLessThanOrEqual(4096);
      // Spot-check bytes against the source directly, inside and around the extents.
      const rfd = fs.openSync(path.join(dst, 'disk.img'), 'r');
      const sfd = fs.openSync(big, 'r');
      try {
        for (const at of [
          0,
          10 * MiB - 10,
          10 * MiB + 100,
          300 * MiB + 4000,
          700 * MiB + 256 * 1024 - 5,
          1000 * MiB + 1,
          1024 * MiB - 64,
        ]) {
          const a = Buffer.alloc(64);
          const b = Buffer.alloc(64);
          fs.readSync(rfd, a, 0, 64, at);
          fs.readSync(sfd, b, 0, 64, at);
          expect(a.equals(b), `bytes at ${at}`).toBe(true);
        }
      } finally {
        fs.closeSync(rfd);
        fs.closeSync(sfd);
      }
    } finally {
      await repo.close();
    }
  });
});

/* ---- special files ---------------------------------------------------------------- */

describe('device nodes and sockets', () => {
  it('captures and restores character and block devices with the same rdev', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    native.mknod(path.join(src, 'null'), S_IFCHR | 0o666, 1, 3);
    native.mknod(path.join(src, 'loop0'), S_IFBLK | 0o660, 7, 0);
    // Numbers beyond the old 8-bit minor / 12-bit major split.
    native.mknod(path.join(src, 'wide'), S_IFCHR | 0o600, 4000, 300_000);
    fs.lchownSync(path.join(src, 'loop0'), 0, 6);
    native.setXattr(path.join(src, 'null'), 'trusted.dev', Buffer.from('x'));
    setTimesNs(path.join(src, 'null'), 1n, 1_111_111_111_111_111_111n);
    setTimesNs(path.join(src, 'wide'), 1n, 999n);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.specials).toBe(3);
      const nodes = await repo.readTree(snap.root.subtree!);
      const wide = nodes.find((n) => n.name.toString() === 'wide')!;
      expect([wide.type, wide.rdevMajor, wide.rdevMinor]).toEqual(['chardev', 4000, 300_000]);
      expect(nodes.find((n) => n.name.toString() === 'loop0')!.type).toBe('blockdev');
      const dst = path.join(work, 'dst');
      const result = await repo.restore(snap.id, dst);
      expect(result.skipped).toEqual([]);
      expect(diffTrees(src, dst)).toEqual([]);
      for (const n of ['null', 'loop0', 'wide']) {
        const a = fs.lstatSync(path.join(src, n));
        const b = fs.lstatSync(path.join(dst, n));
        expect(b.rdev, n).toBe(a.rdev);
        expect(b.isCharacterDevice(), n).toBe(a.isCharacterDevice());
        expect(b.isBlockDevice(), n).toBe(a.isBlockDevice());
      }
    } finally {
      await repo.close();
    }
  });

  it('skips a unix socket and reports it', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'run'), { recursive: true });
    fs.writeFileSync(path.join(src, 'run/keep'), 'kept');
    const sockPath = path.join(src, 'run', 'app.sock');
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, resolve);
    });
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      expect(fs.lstatSync(sockPath).isSocket()).toBe(true);
      const before = describeTree(src);
      const snap = await repo.snapshot(src);
      expect(snap.stats.skipped).toBe(1);
      expect(snap.skippedEntries).toHaveLength(1);
      expect(snap.skippedEntries[0]!.path).toBe(sockPath);
      expect(snap.skippedEntries[0]!.reason).toMatch(/socket/);
      expect(snap.stats.files).toBe(1);
      // The record on disk says the same.
      const reread = await repo.findSnapshot(snap.id);
      expect(reread.stats.skipped).toBe(1);
      expect(reread.skippedEntries.map((s) => s.path)).toEqual([sockPath]);

      const dst = path.join(work, 'dst');
      await repo.restore(snap.id, dst);
      const sockKey = ['run', 'app.sock'].map((s) => Buffer.from(s).toString('hex')).join('/');
      expect(before.get(sockKey)?.type).toBe('socket');
      before.delete(sockKey);
      const after = describeTree(dst);
      expect(after.has(sockKey)).toBe(false);
      // The directory's mtime is the source's: the socket's absence does not show.
      expect(compareTrees(before, after)).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await repo.close();
    }
  });
});

describe('content addressing', () => {
  it('stores identical content once and restores every copy', async () => {
    const work = workDir();
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'x/y'), { recursive: true });
    const data = prng(3, 500_000);
    for (const p of ['one', 'x/two', 'x/y/three']) fs.writeFileSync(path.join(src, p), data);
    const repo = await initRepo(path.join(work, 'repo'));
    try {
      const snap = await repo.snapshot(src);
      expect(snap.stats.bytes).toBe(3 * data.length);
      // Random data: one copy's worth of chunks, plus three trees listing ~30 chunks each.
      expect(snap.stats.newBytes).toBeLessThan(data.length + 16 * 1024);
      expect(snap.stats.newBytes).toBeGreaterThanOrEqual(data.length);
      await repo.restore(snap.id, path.join(work, 'dst'));
      expect(diffTrees(src, path.join(work, 'dst'))).toEqual([]);
      expect(sha(fs.readFileSync(path.join(work, 'dst/x/y/three')))).toBe(sha(data));
    } finally {
      await repo.close();
    }
  });
});
