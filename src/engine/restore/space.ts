/**
 * space: how much room a restore needs, and the check made before one
 * starts, so a restore that cannot fit is refused instead of stopping with
 * ENOSPC halfway and leaving partial files.
 *
 * The need is what the restore writes: every file's data without its holes
 * (holes are restored as holes), each hard-linked inode once, plus a block
 * for every entry (inode, directory block). Trees are read from the
 * repository; no data is. Reading every tree costs about 10 µs per entry
 * (47 s at 5,000,000 files), so a check first compares the free space with
 * a bound taken from the snapshot's statistics (spaceBound) and reads the
 * trees only when that bound does not fit.
 */
import { InsufficientSpaceError } from '../../core/errors.js';
import type { SnapshotStats } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import { freeBytes } from '../util/disk-space.js';

/** Bytes counted for each entry besides its data: its inode and directory entry, rounded up to a block. */
const ENTRY_OVERHEAD = 4096;
const BLOCK = 4096;

export interface TreeSource {
  readTree(id: string): Promise<readonly TreeNode[]>;
}

/**
 * restoreFootprint returns the bytes restoring the directory `root` writes
 * to disk. A listing that cannot be read fails it with what `named` makes
 * of the error and the directory's path below root (by default the error).
 */
export async function restoreFootprint(
  src: TreeSource,
  root: TreeNode,
  named: (err: unknown, dir: readonly Buffer[]) => unknown = (err) => err,
): Promise<number> {
  const links = new Set<string>();
  let total = 0;
  const walk = async (node: TreeNode, dir: readonly Buffer[]): Promise<void> => {
    total += ENTRY_OVERHEAD;
    if (node.type === 'dir' && node.subtree) {
      const children = await src.readTree(node.subtree).catch((err: unknown) => {
        throw named(err, dir);
      });
      for (const child of children) await walk(child, [...dir, child.name]);
    } else if (node.type === 'file') {
      if (node.linkGroup !== undefined) {
        if (links.has(node.linkGroup)) return;
        links.add(node.linkGroup);
      }
      for (const c of node.content ?? []) if (c.id !== null) total += Math.ceil(c.length / BLOCK) * BLOCK;
    } else if (node.type === 'symlink') {
      total += node.target?.length ?? 0;
    }
  };
  await walk(root, []);
  return total;
}

/**
 * spaceBound is more than restoring the whole snapshot, or any part of it,
 * writes, from its recorded statistics alone: every file's logical size
 * rounded up to a block (a file takes at most the blocks its size covers,
 * however its chunks and holes fall), hard-linked names counted as files of
 * their own, a block for every entry and every symlink's target.
 */
export function spaceBound(stats: SnapshotStats): number {
  const entries = stats.files + stats.dirs + stats.symlinks + stats.specials + 1; // and the root
  return stats.bytes + stats.files * BLOCK + entries * ENTRY_OVERHEAD + stats.symlinks * BLOCK;
}

/**
 * roomFor tells whether the filesystem holding `target` has `bytes` free, or
 * cannot tell (checkSpace lets a restore go on then too): when it answers
 * true for spaceBound, the trees need not be walked.
 */
export async function roomFor(target: string, bytes: number): Promise<boolean> {
  const free = await freeBytes(target);
  return free === null || bytes <= free;
}

/**
 * checkSpace throws InsufficientSpaceError when the filesystem holding
 * `target` has less than `needed` bytes free; it passes when free space
 * cannot be told.
 */
export async function checkSpace(what: string, target: string, needed: number): Promise<void> {
  const free = await freeBytes(target);
  if (free !== null && needed > free) throw new InsufficientSpaceError(what, target, needed, free);
}
