/**
 * live: directories on disk presented as a TreeSource, so diffTrees can
 * compare a snapshot with the volumes as they are now.
 *
 * Only metadata is read: one listing with lstat of every entry per
 * directory (native readDirStats), and a readlink per symlink; file
 * contents are never opened. The nodes carry no content ids, so they are
 * compared with liveModified (size and modification time stand for the
 * content, as a snapshot's change detection uses them), not isModified.
 *
 * Safety: a directory is reopened for each listing from its top directory,
 * one component at a time relative to its parent with O_NOFOLLOW, so a
 * symlink swapped in for a directory during the walk is never followed.
 * Sockets are left out, as snapshots leave them out.
 *
 * Concurrency: the files may change while they are walked (the services
 * keep running); each directory is read as it is when it is listed. An
 * entry that vanishes between a listing and its readlink is left out.
 */
import { isErrno } from '../../core/errors.js';
import { compareNames, type TreeNode } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { readDirStats } from '../native.js';
import { type MutableNode, baseNode, devMajor, devMinor, fromBigIntStats, typeOf } from '../snapshot/node-stat.js';
import type { TreeSource } from './browse.js';

/** Tree ids of live directories start with this (never a blob id: those are hex). */
export const LIVE_ID = 'live:';

/** One top directory of the live side: a named child of the live root. */
export interface LiveTop {
  /** Its name in the root listing (a snapshot root's child: "service.volume"). */
  readonly name: Buffer;
  readonly path: string;
}

type Dir = { readonly top: string } | { readonly parent: number; readonly name: Buffer };

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

/**
 * liveModified tells whether a snapshot's node and the live node of the
 * same type at the same path differ: mode, owner, a symlink's target, a
 * device's numbers, and for files the size or the modification time (a
 * file rewritten with its old size and time restored is not seen, as a
 * snapshot would not read it either). Extended attributes are not compared.
 */
export function liveModified(a: TreeNode, b: TreeNode): boolean {
  return (
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    (a.type === 'file' && (a.size !== b.size || a.mtimeNs !== b.mtimeNs)) ||
    !sameBytes(a.target, b.target) ||
    a.rdevMajor !== b.rdevMajor ||
    a.rdevMinor !== b.rdevMinor
  );
}

/**
 * LiveTree answers readTree for the ids it hands out: `rootId` lists the
 * top directories (those that exist), and each directory node it returns
 * has an id to list it. Ids that are not live ones go to `fallback` (the
 * repository), so one source serves both sides of a diff.
 */
export class LiveTree implements TreeSource {
  private readonly dirs: Dir[] = [];
  /** The id of the root listing (the top directories). */
  readonly rootId = `${LIVE_ID}root`;

  constructor(
    private readonly tops: readonly LiveTop[],
    private readonly fallback: TreeSource,
  ) {}

  async readTree(id: string): Promise<readonly TreeNode[]> {
    if (!id.startsWith(LIVE_ID)) return this.fallback.readTree(id);
    if (id === this.rootId) return this.readRoot();
    const n = Number(id.slice(LIVE_ID.length));
    if (!Number.isInteger(n) || this.dirs[n] === undefined) throw new Error(`unknown live directory id ${id}`);
    let fd: number;
    try {
      fd = await this.openDir(n);
    } catch (err) {
      // Gone (or replaced by something else) since its parent was listed: now empty.
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return [];
      throw err;
    }
    try {
      return await this.list(fd, n);
    } finally {
      await fsx.close(fd);
    }
  }

  private register(dir: Dir): string {
    this.dirs.push(dir);
    return `${LIVE_ID}${this.dirs.length - 1}`;
  }

  private async openDir(n: number): Promise<number> {
    const dir = this.dirs[n]!;
    if ('top' in dir) return fsx.open(dir.top, fsx.OPEN_TOP_DIR);
    const parent = await this.openDir(dir.parent);
    try {
      return await fsx.open(fsx.at(parent, dir.name), fsx.OPEN_DIR);
    } finally {
      await fsx.close(parent);
    }
  }

  private async readRoot(): Promise<TreeNode[]> {
    const nodes: TreeNode[] = [];
    for (const top of this.tops) {
      let fd: number;
      try {
        fd = await fsx.open(top.path, fsx.OPEN_TOP_DIR);
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) continue; // never created, or removed: not there
        throw err;
      }
      try {
        const node = baseNode(top.name, 'dir', fromBigIntStats(await fsx.fstat(fd, { bigint: true })));
        node.subtree = this.register({ top: top.path });
        nodes.push(node);
      } finally {
        await fsx.close(fd);
      }
    }
    return nodes.sort((a, b) => compareNames(a.name, b.name));
  }

  private async list(fd: number, parent: number): Promise<TreeNode[]> {
    const entries = await readDirStats(fd);
    entries.sort((a, b) => compareNames(a.name, b.name));
    const nodes: TreeNode[] = [];
    for (const st of entries) {
      if (st.error) continue; // vanished between the listing and its lstat
      const type = typeOf(st.mode);
      if (type === null || type === 'socket') continue;
      const node: MutableNode = baseNode(st.name, type, st);
      if (type === 'file') node.size = st.size;
      else if (type === 'dir') node.subtree = this.register({ parent, name: st.name });
      else if (type === 'symlink') {
        try {
          node.target = await fsx.readlink(fsx.at(fd, st.name), { encoding: 'buffer' });
        } catch (err) {
          if (isErrno(err, 'ENOENT', 'EINVAL')) continue; // gone, or no longer a symlink
          throw err;
        }
      } else if (type !== 'fifo') {
        node.rdevMajor = devMajor(st.rdev);
        node.rdevMinor = devMinor(st.rdev);
      }
      nodes.push(node);
    }
    return nodes;
  }
}
