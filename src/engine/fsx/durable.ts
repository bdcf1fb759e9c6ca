/**
 * durable: making directory changes survive a crash. A file's own fsync does
 * not cover its name: creations, renames and unlinks are durable only once
 * the directory holding them is fsynced too.
 */
import fs from 'node:fs/promises';

/** fsyncDir makes a directory's entries (creations, renames, unlinks) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
