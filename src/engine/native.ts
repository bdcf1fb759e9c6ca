/**
 * native: typed access to the small C addon (native/kova_native.c) that
 * provides what node:fs lacks: the chunker's hot loop, SEEK_DATA/SEEK_HOLE,
 * mknod, extended attributes that never follow symlinks, renameat2
 * (RENAME_EXCHANGE), syncfs and nanosecond timestamps.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** A path as node:fs accepts it; Buffers keep names that are not UTF-8. */
export type PathLike = string | Buffer;

interface NativeAddon {
  cutPoints(
    data: Uint8Array,
    gear: Uint32Array,
    min: number,
    avg: number,
    max: number,
    maskS: number,
    maskL: number,
    eof: boolean,
  ): Uint32Array;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  mknod(path: PathLike, mode: number, major: number, minor: number): void;
  listXattrs(pathOrFd: PathLike | number): Buffer[];
  getXattr(pathOrFd: PathLike | number, name: PathLike): Buffer;
  setXattr(pathOrFd: PathLike | number, name: PathLike, value: Uint8Array): void;
  renameExchange(a: PathLike, b: PathLike): void;
  syncfs(fd: number, cb: (err: Error | null) => void): void;
  setTimes(pathOrFd: PathLike | number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/engine and dist/engine both sit two levels below the package root.
const addonPath = path.resolve(here, '..', '..', 'build', 'Release', 'kova_native.node');

function load(): NativeAddon {
  try {
    return createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (err) {
    throw new Error(
      `the native addon is missing or broken (${addonPath}); build it with "npm run install" (needs python3, make and a C compiler)`,
      { cause: err },
    );
  }
}

/** native is the loaded addon. Loading happens on first import. */
export const native: NativeAddon = load();

/** syncfs flushes the whole filesystem that holds `fd` to stable storage. */
export function syncfs(fd: number): Promise<void> {
  return new Promise((resolve, reject) => native.syncfs(fd, (err) => (err ? reject(err) : resolve())));
}

const NS = 1_000_000_000n;

/** setTimesNs sets atime and mtime exactly; a path's final symlink is not followed. */
export function setTimesNs(pathOrFd: PathLike | number, atimeNs: bigint, mtimeNs: bigint): void {
  const split = (ns: bigint): [number, number] => {
    let s = ns / NS;
    let r = ns % NS;
    if (r < 0n) {
      r += NS;
      s -= 1n;
    }
    return [Number(s), Number(r)];
  };
  const [as, an] = split(atimeNs);
  const [ms, mn] = split(mtimeNs);
  native.setTimes(pathOrFd, as, an, ms, mn);
}
