/**
 * scanner: counts the regular files below some directories and their sizes,
 * so a snapshot's progress can show totals. It runs alongside the capture and
 * only reads metadata; it never follows a symlink.
 */
import * as fsx from '../fsx/fsx.js';
import { type EntryStat, readDirStats } from '../native.js';
import { typeOf } from './node-stat.js';

export interface Totals {
  readonly files: number;
  readonly bytes: number;
}

export async function scanTotals(paths: readonly string[]): Promise<Totals> {
  let files = 0;
  let bytes = 0;
  const walk = async (dirFd: number): Promise<void> => {
    let entries: EntryStat[];
    try {
      entries = await readDirStats(dirFd);
    } catch {
      return;
    }
    for (const st of entries) {
      if (st.error) continue;
      const t = typeOf(st.mode);
      if (t === 'file') {
        files++;
        bytes += st.size;
      } else if (t === 'dir') {
        let fd: number;
        try {
          fd = await fsx.open(fsx.at(dirFd, st.name), fsx.OPEN_DIR);
        } catch {
          continue;
        }
        try {
          await walk(fd);
        } finally {
          await fsx.close(fd);
        }
      }
    }
  };
  for (const path of paths) {
    const fd = await fsx.open(path, fsx.OPEN_TOP_DIR);
    try {
      await walk(fd);
    } finally {
      await fsx.close(fd);
    }
  }
  return { files, bytes };
}
