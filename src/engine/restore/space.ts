/**
 * space: how much room a restore needs, and the check made before one
 * starts, so a restore that cannot fit is refused instead of stopping with
 * ENOSPC halfway and leaving partial files.
 *
 * The need is what the restore writes: the blocks of every file's data
 * (holes are restored as holes), each hard-linked inode once, and for every
 * entry its inode and directory entry (entryCost); and, on filesystems that
 * have a fixed number of inodes (ext4), an inode for every entry but the
 * second names of hard links. Trees are read from the
 * repository; no data is. Reading every tree costs about 10 µs per entry
 * (47 s at 5,000,000 files), so a check first compares the free space with
 * a bound taken from the snapshot's statistics (spaceBound) and reads the
 * trees only when that bound does not fit.
 */
import { InsufficientSpaceError } from '../../core/errors.js';
import type { SnapshotStats } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import { freeSpace } from '../util/disk-space.js';

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

/** What a restore needs: bytes, and inodes (files, directories, symlinks and special files it creates). */
export interface SpaceNeed {
  readonly bytes: number;
  readonly inodes: number;
}

/** addNeeds adds up needs. */
export function addNeeds(needs: readonly SpaceNeed[]): SpaceNeed {
  let bytes = 0;
  let inodes = 0;
  for (const n of needs) {
    bytes += n.bytes;
    inodes += n.inodes;
  }
  return { bytes, inodes };
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
 * restoreFootprint returns what restoring the directory `root` takes on
 * disk. A listing that cannot be read fails it with what `named` makes of
 * the error and the directory's path below root (by default the error).
 */
export async function restoreFootprint(
  src: TreeSource,
  root: TreeNode,
  named: (err: unknown, dir: readonly Buffer[]) => unknown = (err) => err,
): Promise<SpaceNeed> {
  const links = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = async (node: TreeNode, dir: readonly Buffer[]): Promise<void> => {
    bytes += entryCost(node.name.length);
    if (node.type === 'dir') {
      bytes += BLOCK;
      inodes++;
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
      bytes += dataBlocks(node) * BLOCK;
      inodes++;
    } else {
      if (node.type === 'symlink') bytes += Math.ceil((node.target?.length ?? 0) / BLOCK) * BLOCK;
      inodes++;
    }
  };
  await walk(root, []);
  return { bytes, inodes };
}

/**
 * spaceBound is more than restoring the whole snapshot, or any part of it,
 * writes, from its recorded statistics alone: every file's logical size
 * rounded up to a block (a file takes at most the blocks its size covers,
 * however its chunks and holes fall), hard-linked names counted as files of
 * their own, every entry at the cost of the longest name, a block for every
 * directory and every symlink's target; an inode for every name.
 */
export function spaceBound(stats: SnapshotStats): SpaceNeed {
  const entries = stats.files + stats.dirs + stats.symlinks + stats.specials + 1; // and the root
  return {
    bytes: stats.bytes + stats.files * BLOCK + entries * entryCost(NAME_MAX) + (stats.dirs + 1 + stats.symlinks) * BLOCK,
    inodes: entries,
  };
}

/**
 * roomFor tells whether the filesystem holding `target` has room for
 * `need`, or cannot tell (checkSpace lets a restore go on then too): when
 * it answers true for spaceBound, the trees need not be walked.
 */
export async function roomFor(target: string, need: SpaceNeed): Promise<boolean> {
  const free = await freeSpace(target);
  return free === null || (need.bytes <= free.bytes && (free.inodes === null || need.inodes <= free.inodes));
}

/**
 * checkSpace throws InsufficientSpaceError when the filesystem holding
 * `target` has less than `need` free, in bytes or in inodes; it passes when
 * free space cannot be told.
 */
export async function checkSpace(what: string, target: string, need: SpaceNeed): Promise<void> {
  const free = await freeSpace(target);
  if (free === null) return;
  if (need.bytes > free.bytes) throw new InsufficientSpaceError(what, target, need.bytes, free.bytes);
  if (free.inodes !== null && need.inodes > free.inodes) {
    throw new InsufficientSpaceError(what, target, need.bytes, free.bytes, { needed: need.inodes, free: free.inodes });
  }
}
