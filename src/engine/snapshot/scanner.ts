/**
 * scanner: counts the regular files below some directories and their sizes,
 * so a snapshot's progress can show totals. It runs alongside the capture and
 * only reads metadata; it never follows a symlink.
 */
import type { BigIntStats } from 'node:fs';
import * as fsx from '../fsx/fsx.js';
import { typeOf } from './node-stat.js';

export interface Totals {
  readonly files: number;
  readonly bytes: number;
}

export async function scanTotals(paths: readonly string[]): Promise<Totals> {
  let files = 0;
  let bytes = 0;
  const walk = async (dirFd: number): Promise<void> => {
    let names: Buffer[];
    try {
      names = await fsx.readdir(fsx.at(dirFd), { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const name of names) {
      const p = fsx.at(dirFd, name);
      let st: BigIntStats;
      try {
        st = await fsx.lstat(p, { bigint: true });
      } catch {
        continue;
      }
      const t = typeOf(st.mode);
      if (t === 'file') {
        files++;
        bytes += Number(st.size);
      } else if (t === 'dir') {
        let fd: number;
        try {
          fd = await fsx.open(p, fsx.OPEN_DIR);
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
