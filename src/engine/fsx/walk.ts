/**
 * walk: a depth-first walk of everything below an open directory, reading
 * each directory's entries with their stat in one call (native readDirStats)
 * and opening subdirectories relative to their parent (fsx), never through a
 * symlink. Used where only metadata is needed: the progress totals of a
 * snapshot and the disk usage of volumes.
 */
import { type EntryStat, readDirStats } from '../native.js';
import * as fsx from './fsx.js';

/**
 * walkEntries calls `visit` for every entry below the directory open as
 * `dirFd`, parents before children, one directory at a time. Entries whose
 * stat failed are skipped, and so are subdirectories that cannot be opened
 * or listed (they vanished or are not readable); a failure to list `dirFd`
 * itself rejects. The caller keeps `dirFd` and closes it.
 */
export async function walkEntries(dirFd: number, visit: (entry: EntryStat) => void): Promise<void> {
  await walkListed(dirFd, await readDirStats(dirFd), visit);
}

async function walkListed(dirFd: number, entries: readonly EntryStat[], visit: (entry: EntryStat) => void): Promise<void> {
  for (const e of entries) {
    if (e.error) continue;
    visit(e);
    if ((e.mode & fsx.S_IFMT) !== fsx.S_IFDIR) continue;
    let child: number;
    try {
      child = await fsx.open(fsx.at(dirFd, e.name), fsx.OPEN_DIR);
    } catch {
      continue;
    }
    try {
      let listed: EntryStat[];
      try {
        listed = await readDirStats(child);
      } catch {
        continue;
      }
      await walkListed(child, listed, visit);
    } finally {
      await fsx.close(child);
    }
  }
}
