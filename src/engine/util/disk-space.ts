/**
 * disk-space: free space of the filesystem holding a path (statfs), and the
 * typed error a write that ran out of it becomes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DiskFullError, isErrno, isNoSpace } from '../../core/errors.js';

/**
 * freeBytes returns the bytes an unprivileged writer may still use on the
 * filesystem holding `p` (its nearest existing ancestor when `p` does not
 * exist yet), or null when that cannot be told (not a local path).
 */
export async function freeBytes(p: string): Promise<number | null> {
  if (!path.isAbsolute(p)) return null;
  let dir = p;
  for (;;) {
    try {
      const st = await fs.statfs(dir);
      return st.bavail * st.bsize;
    } catch (err) {
      const parent = path.dirname(dir);
      if (!isErrno(err, 'ENOENT', 'ENOTDIR') || parent === dir) return null;
      dir = parent;
    }
  }
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
