/**
 * space: how much room a restore needs, and the check made before one
 * starts, so a restore that cannot fit is refused instead of stopping with
 * ENOSPC halfway and leaving partial files.
 *
 * The need is what the restore writes: the blocks of every file's data
 * (holes are restored as holes), each hard-linked inode once, and for every
 * entry its inode and directory entry (entryCost). Trees are read from the
 * repository; no data is. Reading every tree costs about 10 µs per entry
 * (47 s at 5,000,000 files), so a check first compares the free space with
 * a bound taken from the snapshot's statistics (spaceBound) and reads the
 * trees only when that bound does not fit.
 */
import { InsufficientSpaceError } from '../../core/errors.js';
import type { SnapshotStats } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import { freeBytes } from '../util/disk-space.js';

/** Data is counted in whole blocks of this size; a directory takes at least one. */
const BLOCK = 4096;
/** The longest name an entry can have on Linux. */
const NAME_MAX = 255;

/**
 * entryCost is what an entry named with `nameLength` bytes takes besides its
 * data: its inode and its directory entry. Restoring 20,000 small files onto
 * loop-mounted filesystems took, besides their data blocks, 41 bytes an entry
 * on ext4 with 12-byte names and 315 with 200-byte names (ext4's inodes are
 * set aside when it is made), and 549 and 762 on XFS (512-byte inodes made as
 * needed). Counted with room to spare: 1 KiB and twice the name. btrfs keeps
 * small files and inodes in metadata that its free space does not include.
 */
export function entryCost(nameLength: number): number {
  return 1024 + 2 * nameLength;
}

export interface TreeSource {
  readTree(id: string): Promise<readonly TreeNode[]>;
}

/**
 * dataBlocks counts the blocks a file's data touches: a block is written
 * when any byte of it is data, and left a hole only when all of it is.
 */
function dataBlocks(node: TreeNode): number {
  let blocks = 0;
  let offset = 0;
  let counted = -1; // the last block counted
  for (const c of node.content ?? []) {
    if (c.id !== null && c.length > 0) {
      const first = Math.max(Math.floor(offset / BLOCK), counted + 1);
      const last = Math.floor((offset + c.length - 1) / BLOCK);
      if (last >= first) blocks += last - first + 1;
      counted = Math.max(counted, last);
    }
    offset += c.length;
  }
  return blocks;
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
    total += entryCost(node.name.length);
    if (node.type === 'dir') {
      total += BLOCK;
      if (!node.subtree) return;
      const children = await src.readTree(node.subtree).catch((err: unknown) => {
        throw named(err, dir);
      });
      for (const child of children) await walk(child, [...dir, child.name]);
    } else if (node.type === 'file') {
      if (node.linkGroup !== undefined) {
        if (links.has(node.linkGroup)) return;
        links.add(node.linkGroup);
      }
      total += dataBlocks(node) * BLOCK;
    } else if (node.type === 'symlink') {
      total += Math.ceil((node.target?.length ?? 0) / BLOCK) * BLOCK;
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
 * their own, every entry at the cost of the longest name, a block for every
 * directory and every symlink's target.
 */
export function spaceBound(stats: SnapshotStats): number {
  const entries = stats.files + stats.dirs + stats.symlinks + stats.specials + 1; // and the root
  return stats.bytes + stats.files * BLOCK + entries * entryCost(NAME_MAX) + (stats.dirs + 1 + stats.symlinks) * BLOCK;
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
