/**
 * space: how much room a restore needs, and the check made before one
 * starts, so a restore that cannot fit is refused instead of stopping with
 * ENOSPC halfway and leaving partial files.
 *
 * The need is what the restore writes: every file's data without its holes
 * (holes are restored as holes), each hard-linked inode once, plus a block
 * for every entry (inode, directory block). Trees are read from the
 * repository; no data is.
 */
import { InsufficientSpaceError } from '../../core/errors.js';
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
 * checkSpace throws InsufficientSpaceError when the filesystem holding
 * `target` has less than `needed` bytes free; it passes when free space
 * cannot be told.
 */
export async function checkSpace(what: string, target: string, needed: number): Promise<void> {
  const free = await freeBytes(target);
  if (free !== null && needed > free) throw new InsufficientSpaceError(what, target, needed, free);
}
