/**
 * The live directories as a tree source: listings as lstat sees them,
 * never through a symlink, and the size+mtime comparison used against a
 * snapshot's nodes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../testing.js';
import type { TreeNode } from '../format/tree.js';
import { LiveTree, liveModified } from './live.js';

const noRepo = { readTree: () => Promise.reject(new Error('the repository is not read here')) };

let work: string;
beforeEach(() => {
  work = tempDir('kova-live-');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const names = (nodes: readonly TreeNode[]) => nodes.map((n) => n.name.toString('latin1'));

describe('LiveTree', () => {
  it('lists the top directories that exist, then each directory in byte order with lstat metadata', async () => {
    const vol = path.join(work, 'vol');
    fs.mkdirSync(path.join(vol, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(vol, 'b.txt'), 'bbb');
    fs.writeFileSync(path.join(vol, 'B.txt'), 'B');
    fs.chmodSync(path.join(vol, 'b.txt'), 0o600);
    fs.symlinkSync('/etc/passwd', path.join(vol, 'out'));
    execFileSync('mkfifo', [path.join(vol, 'pipe')]);
    const server = net.createServer().listen(path.join(vol, 'sock'));
    await new Promise((r) => server.once('listening', r));
    try {
      const live = new LiveTree(
        [
          { name: Buffer.from('svc.vol'), path: vol },
          { name: Buffer.from('svc.absent'), path: path.join(work, 'absent') },
        ],
        noRepo,
      );
      const root = await live.readTree(live.rootId);
      expect(names(root)).toEqual(['svc.vol']);
      const top = await live.readTree(root[0]!.subtree!);
      // Sockets are left out, as snapshots leave them out.
      expect(names(top)).toEqual(['B.txt', 'b.txt', 'out', 'pipe', 'sub']);
      const b = top.find((n) => n.name.toString() === 'b.txt')!;
      const st = fs.lstatSync(path.join(vol, 'b.txt'), { bigint: true });
      expect(b).toMatchObject({ type: 'file', size: 3, mode: 0o600, mtimeNs: st.mtimeNs });
      expect(b.content).toBeUndefined();
      expect(top.find((n) => n.type === 'symlink')!.target!.toString()).toBe('/etc/passwd');
      expect(top.find((n) => n.name.toString() === 'pipe')!.type).toBe('fifo');
      expect(await live.readTree(top.find((n) => n.type === 'dir')!.subtree!)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('never lists through a symlink that replaced a directory after its parent was listed', async () => {
    const vol = path.join(work, 'vol');
    const outside = path.join(work, 'outside');
    fs.mkdirSync(path.join(vol, 'a', 'sub'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'host data');
    const live = new LiveTree([{ name: Buffer.from('v'), path: vol }], noRepo);
    const [v] = await live.readTree(live.rootId);
    const [a] = await live.readTree(v!.subtree!);
    const [sub] = await live.readTree(a!.subtree!);
    fs.rmSync(path.join(vol, 'a'), { recursive: true });
    fs.symlinkSync(outside, path.join(vol, 'a'));
    // Both the swapped directory and one below it read as gone, not as the outside directory.
    expect(await live.readTree(a!.subtree!)).toEqual([]);
    expect(await live.readTree(sub!.subtree!)).toEqual([]);
  });

  it('passes ids that are not live ones to the repository', async () => {
    const seen: string[] = [];
    const live = new LiveTree([], { readTree: (id) => (seen.push(id), Promise.resolve([])) });
    expect(await live.readTree('ab'.repeat(32))).toEqual([]);
    expect(seen).toEqual(['ab'.repeat(32)]);
  });
});

describe('liveModified', () => {
  const file: TreeNode = {
    name: Buffer.from('f'),
    type: 'file',
    mode: 0o644,
    uid: 1,
    gid: 1,
    mtimeNs: 1_000n,
    ctimeNs: 1_000n,
    ino: 5n,
    nlink: 1,
    size: 10,
    content: [{ id: 'ab'.repeat(32), length: 10 }],
  };
  const now = { ...file, content: undefined, ctimeNs: 9_000n, ino: 7n, nlink: 2 };

  it('compares files by size and modification time, not by content ids, inode or ctime', () => {
    expect(liveModified(file, now)).toBe(false);
    expect(liveModified(file, { ...now, mtimeNs: 1_001n })).toBe(true);
    expect(liveModified(file, { ...now, size: 11 })).toBe(true);
    expect(liveModified(file, { ...now, mode: 0o600 })).toBe(true);
    expect(liveModified(file, { ...now, uid: 2 })).toBe(true);
  });

  it("ignores a directory's own time, and compares symlink targets", () => {
    const dir: TreeNode = { ...file, type: 'dir', size: 0, content: undefined, subtree: 'x' };
    expect(liveModified(dir, { ...dir, mtimeNs: 5_000n, subtree: 'live:1' })).toBe(false);
    const link: TreeNode = { ...file, type: 'symlink', size: 0, content: undefined, target: Buffer.from('a') };
    expect(liveModified(link, { ...link, mtimeNs: 5_000n })).toBe(false);
    expect(liveModified(link, { ...link, target: Buffer.from('b') })).toBe(true);
  });
});
