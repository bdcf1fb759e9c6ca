/**
 * restoreFootprint: what a restore will write, counted from the trees alone;
 * spaceBound: a bound on it from a snapshot's statistics.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SnapshotRecord } from '../format/snapshot-record.js';
import type { ContentRef, NodeType, TreeNode } from '../format/tree.js';
import { Repository } from '../repo/repository.js';
import { prng, tempDir } from '../testing.js';
import { entryCost, restoreFootprint, spaceBound, type TreeSource } from './space.js';

const cleanups: string[] = [];
afterEach(() => {
  for (const d of cleanups.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const node = (name: string, type: NodeType, extra: Partial<TreeNode> = {}): TreeNode => ({
  name: Buffer.from(name),
  type,
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtimeNs: 0n,
  ctimeNs: 0n,
  ino: 0n,
  nlink: 1,
  size: 0,
  ...extra,
});

const file = (name: string, content: ContentRef[], extra: Partial<TreeNode> = {}): TreeNode =>
  node(name, 'file', { content, size: content.reduce((n, c) => n + c.length, 0), ...extra });
const dir = (name: string, subtree: string): TreeNode => node(name, 'dir', { subtree });

/** A tree source over a map, recording what is read; each read takes a turn of the timers. */
class Trees implements TreeSource {
  readonly read: string[] = [];
  constructor(private readonly trees: Map<string, TreeNode[]>) {}

  async readTree(id: string): Promise<readonly TreeNode[]> {
    this.read.push(id);
    await new Promise((r) => setTimeout(r, 1));
    const t = this.trees.get(id);
    if (!t) throw new Error(`no tree ${id}`);
    return t;
  }
}

describe('restoreFootprint', () => {
  it('counts the blocks data touches, every entry, hardlinked inodes once and symlink targets', async () => {
    const trees = new Map<string, TreeNode[]>([
      [
        'root',
        [
          file('a', [
            { id: 'x'.repeat(64), length: 5000 }, // blocks 0 and 1
            { id: null, length: 1 << 20 }, // a hole: nothing
            { id: 'y'.repeat(64), length: 4096 }, // blocks 257 and 258 (it starts mid-block)
            { id: 'v'.repeat(64), length: 100 }, // block 258 again: nothing more
          ]),
          file('b', [{ id: 'z'.repeat(64), length: 10 }], { linkGroup: 'g1', nlink: 2 }),
          file('c', [{ id: 'z'.repeat(64), length: 10 }], { linkGroup: 'g1', nlink: 2 }),
          node('l', 'symlink', { target: Buffer.from('../somewhere') }),
          dir('d', 'sub'),
        ],
      ],
      ['sub', [file('e', [{ id: 'w'.repeat(64), length: 1 }]), dir('f', 'empty')]],
      ['empty', []],
    ]);
    const src = new Trees(trees);
    const got = await restoreFootprint(src, dir('', 'root'));
    // Entries: the root (no name) and a, b, c, l, d, e, f (c, the second
    // link of g1, takes its entry but neither the data nor an inode again).
    // Blocks: a 2 + 2, b 1, e 1; the target of l 1; the directories root, d,
    // f 1 each.
    expect(got).toEqual({ bytes: entryCost(0) + 7 * entryCost(1) + (4 + 1 + 1 + 1 + 3) * 4096, inodes: 7 });
    expect(src.read.sort()).toEqual(['empty', 'root', 'sub']);
  });

  it('names the directory whose tree cannot be read', async () => {
    const trees = new Map<string, TreeNode[]>([
      ['root', [dir('fine', 'fine'), dir('ok', 'ok')]],
      ['fine', [file('f', [{ id: 'a'.repeat(64), length: 1 }])]],
      ['ok', [dir('deeper', 'gone')]],
    ]);
    const failures: string[] = [];
    const err = await restoreFootprint(new Trees(trees), dir('', 'root'), (e, at) => {
      failures.push(at.map((b) => b.toString()).join('/'));
      return e;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('no tree gone');
    expect(failures).toEqual(['ok/deeper']);
  });
});

/** Bytes every entry below `root` (and root) takes on disk, as st_blocks says. */
function allocated(root: string): number {
  let n = fs.lstatSync(root).blocks * 512;
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    n += e.isDirectory() ? allocated(p) : fs.lstatSync(p).blocks * 512;
  }
  return n;
}

describe('spaceBound', () => {
  /** Small files, a chunked file with holes inside and at the end, hardlinks, a symlink, a FIFO, empty and nested directories. */
  function source(): string {
    const dir = tempDir('kova-space-');
    cleanups.push(dir);
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'a/b/c'), { recursive: true });
    fs.mkdirSync(path.join(src, 'empty'));
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, 'a', `f${i}`), prng(i, i * 97));
    fs.writeFileSync(path.join(src, 'a/b/c/text'), 'x'.repeat(70_000));
    const fd = fs.openSync(path.join(src, 'sparse'), 'w');
    for (let i = 0; i < 6; i++) fs.writeSync(fd, prng(100 + i, 300_000), 0, 300_000, i * 2_000_000 + 1234);
    fs.ftruncateSync(fd, 20_000_000);
    fs.closeSync(fd);
    fs.writeFileSync(path.join(src, 'hard'), prng(7, 5000));
    fs.linkSync(path.join(src, 'hard'), path.join(src, 'a/hard2'));
    fs.symlinkSync('a/b/c/text', path.join(src, 'link'));
    fs.writeFileSync(path.join(src, 'zero'), '');
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    return dir;
  }

  /** withSnapshot snapshots a fresh source() into a new repository and runs `fn` with both. */
  async function withSnapshot(fn: (repo: Repository, snap: SnapshotRecord, dir: string) => Promise<void>): Promise<void> {
    const dir = source();
    const repo = await Repository.init(path.join(dir, 'repo'));
    try {
      await fn(repo, await repo.snapshot(path.join(dir, 'src')), dir);
    } finally {
      await repo.close();
    }
  }

  it('is at least what a restore of the snapshot takes on disk', () =>
    withSnapshot(async (repo, snap, dir) => {
      const dst = path.join(dir, 'dst');
      await repo.restore(snap, dst, { checkSpace: false });
      const used = allocated(dst);
      expect(used).toBeGreaterThan(2_000_000); // the data did land
      expect(spaceBound(snap.stats).bytes).toBeGreaterThanOrEqual(used);
      // An inode for every name below the target, and one for the target.
      expect(spaceBound(snap.stats).inodes).toBeGreaterThanOrEqual(fs.readdirSync(dst, { recursive: true }).length + 1);
    }));

  it('spares the restore reading every tree for the space check when the bound fits', () =>
    withSnapshot(async (repo, snap, dir) => {
      const reads = vi.spyOn(repo, 'readTree');
      await repo.restore(snap, path.join(dir, 'checked'));
      const checked = reads.mock.calls.length;
      reads.mockClear();
      await repo.restore(snap, path.join(dir, 'unchecked'), { checkSpace: false });
      expect(reads.mock.calls.length).toBe(checked);
      expect(checked).toBeGreaterThanOrEqual(4); // root, a, a/b, a/b/c, empty
    }));
});
