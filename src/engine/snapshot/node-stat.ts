/**
 * node-stat: turning what lstat/fstat and the xattr calls say about an entry
 * into the fields of a tree node.
 */
import type { BigIntStats } from 'node:fs';
import { isErrno } from '../../core/errors.js';
import type { NodeType, TreeNode } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { type EntryStat, native } from '../native.js';

export type MutableNode = { -readonly [K in keyof TreeNode]: TreeNode[K] };

/** The lstat fields a node is made from (native readDirStats gives these). */
export type StatLike = Omit<EntryStat, 'name' | 'error'>;

/** fromBigIntStats adapts node:fs bigint stats to StatLike. */
export function fromBigIntStats(st: BigIntStats): StatLike {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
    rdev: st.rdev,
    blocks: Number(st.blocks),
  };
}

export function typeOf(mode: number): NodeType | null {
  switch (mode & fsx.S_IFMT) {
    case fsx.S_IFREG:
      return 'file';
    case fsx.S_IFDIR:
      return 'dir';
    case fsx.S_IFLNK:
      return 'symlink';
    case fsx.S_IFIFO:
      return 'fifo';
    case fsx.S_IFCHR:
      return 'chardev';
    case fsx.S_IFBLK:
      return 'blockdev';
    case fsx.S_IFSOCK:
      return 'socket';
    default:
      return null;
  }
}

/** Device number halves, as glibc's major()/minor() compute them. */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
}

export function baseNode(name: Buffer, type: NodeType, st: StatLike): MutableNode {
  return {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    nlink: st.nlink,
    size: 0,
  };
}

/** readXattrs returns an entry's extended attributes, sorted by name. */
export function readXattrs(target: number | Buffer): Array<readonly [Buffer, Buffer]> | undefined {
  let names: Buffer[];
  try {
    names = native.listXattrs(target);
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EPERM', 'EACCES')) return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out: Array<readonly [Buffer, Buffer]> = [];
  for (const n of names.sort(Buffer.compare)) {
    try {
      out.push([n, native.getXattr(target, n)]);
    } catch (err) {
      if (!isErrno(err, 'ENODATA', 'ENOTSUP', 'EPERM', 'EACCES')) throw err;
    }
  }
  return out.length ? out : undefined;
}

/**
 * unchanged tells whether a parent node can stand for the file now seen with
 * `st`, unread: same type, size, mtime, ctime, inode and mode, and a ctime
 * strictly older than the parent's scan start (a file changed in the same
 * clock tick as that scan began is "racily clean" and must be re-read).
 */
export function unchanged(p: TreeNode | undefined, st: StatLike, parentScanStartNs: bigint): p is TreeNode {
  return (
    p !== undefined &&
    p.type === 'file' &&
    p.content !== undefined &&
    p.size === st.size &&
    p.mtimeNs === st.mtimeNs &&
    p.ctimeNs === st.ctimeNs &&
    p.ino === st.ino &&
    p.mode === (st.mode & 0o7777) &&
    st.ctimeNs < parentScanStartNs
  );
}
