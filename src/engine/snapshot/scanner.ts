/**
 * scanner: counts the regular files below some directories and their sizes,
 * so a snapshot's progress can show totals. It runs alongside the capture and
 * only reads metadata; it never follows a symlink.
 */
import * as fsx from '../fsx/fsx.js';
import { walkEntries } from '../fsx/walk.js';
import { typeOf } from './node-stat.js';

export interface Totals {
  readonly files: number;
  readonly bytes: number;
}

export async function scanTotals(paths: readonly string[]): Promise<Totals> {
  let files = 0;
  let bytes = 0;
  for (const path of paths) {
    const fd = await fsx.open(path, fsx.OPEN_TOP_DIR);
    try {
      await walkEntries(fd, (st) => {
        if (typeOf(st.mode) !== 'file') return;
        files++;
        bytes += st.size;
      }).catch(() => undefined); // an unreadable top directory counts as empty
    } finally {
      await fsx.close(fd);
    }
  }
  return { files, bytes };
}
