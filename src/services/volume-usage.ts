/**
 * volume-usage: how many bytes each volume uses on disk, for dashboards.
 * Walking a large volume takes time, so results are cached and refreshed in
 * the background when older than `maxAgeMs`; a caller gets the last known
 * figures (or none yet) without waiting.
 */
import { isErrno } from '../core/errors.js';
import { fsx, walkEntries } from '../engine/index.js';

/** diskUsage returns the bytes allocated by everything below `dir` (not following symlinks). */
export async function diskUsage(dir: string): Promise<number> {
  let fd: number;
  try {
    fd = await fsx.open(dir, fsx.OPEN_DIR);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  let total = 0;
  try {
    await walkEntries(fd, (e) => {
      total += e.blocks * 512;
    });
  } finally {
    await fsx.close(fd);
  }
  return total;
}

export class VolumeUsage {
  private readonly cache = new Map<string, { bytes: number; at: number }>();
  private readonly inFlight = new Set<string>();

  constructor(private readonly maxAgeMs = 30_000) {}

  /** get returns the cached usage of `dir` (undefined until first measured) and refreshes it if stale. */
  get(dir: string): number | undefined {
    const c = this.cache.get(dir);
    if ((!c || Date.now() - c.at > this.maxAgeMs) && !this.inFlight.has(dir)) {
      this.inFlight.add(dir);
      diskUsage(dir)
        .then((bytes) => this.cache.set(dir, { bytes, at: Date.now() }))
        .catch(() => undefined)
        .finally(() => this.inFlight.delete(dir));
    }
    return c?.bytes;
  }

  forget(prefix: string): void {
    for (const k of this.cache.keys()) if (k.startsWith(prefix)) this.cache.delete(k);
  }
}
