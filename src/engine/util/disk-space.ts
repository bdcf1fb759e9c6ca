/**
 * disk-space: free space of the filesystem holding a path (statfs), and the
 * typed error a write that ran out of it becomes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DiskFullError, isErrno, isNoSpace } from '../../core/errors.js';

/** What a filesystem has free: bytes for an unprivileged writer, and inodes (null when it does not count them, as btrfs). */
export interface FreeSpace {
  readonly bytes: number;
  readonly inodes: number | null;
}

/**
 * freeSpace returns what the filesystem holding `p` (its nearest existing
 * ancestor when `p` does not exist yet) has free, or null when that cannot
 * be told (not a local path).
 */
export async function freeSpace(p: string): Promise<FreeSpace | null> {
  if (!path.isAbsolute(p)) return null;
  let dir = p;
  for (;;) {
    try {
      const st = await fs.statfs(dir);
      return { bytes: st.bavail * st.bsize, inodes: st.files > 0 ? st.ffree : null };
    } catch (err) {
      const parent = path.dirname(dir);
      if (!isErrno(err, 'ENOENT', 'ENOTDIR') || parent === dir) return null;
      dir = parent;
    }
  }
}

/** freeBytes returns the bytes free on the filesystem holding `p` (freeSpace), or null. */
export async function freeBytes(p: string): Promise<number | null> {
  return (await freeSpace(p))?.bytes ?? null;
}

/**
 * asDiskFull turns an ENOSPC/EDQUOT error into a DiskFullError naming what
 * was being written (`what`: "repository", "restore target") and the free
 * bytes left; any other error is returned unchanged.
 */
export async function asDiskFull(err: unknown, what: string, where: string): Promise<unknown> {
  if (!isNoSpace(err)) return err;
  return new DiskFullError(what, where, await freeBytes(where), err);
}
