/**
 * native: typed access to the small C addon (native/kova_native.c) that
 * provides what node:fs lacks: the chunker's hot loop, hashing, directory
 * listing and batched reads of small files on the thread pool, SEEK_DATA/SEEK_HOLE,
 * mknod, extended attributes that never follow symlinks, renameat2
 * (RENAME_EXCHANGE), syncfs, nanosecond timestamps, and the C heap's
 * statistics and trimming.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** A path as node:fs accepts it; Buffers keep names that are not UTF-8. */
export type PathLike = string | Buffer;

interface NativeAddon {
  chunkStateSize(): number;
  chunkReset(state: Uint8Array): void;
  chunkHash(
    data: Uint8Array,
    gear: Uint32Array,
    min: number,
    avg: number,
    max: number,
    maskS: number,
    maskL: number,
    state: Uint8Array,
    hints: { offsets: Float64Array; lengths: Uint32Array; ids: Buffer } | null,
    cb?: (err: Error | null, r: { cuts: Uint32Array; digests: Buffer }) => void,
  ): { cuts: Uint32Array; digests: Buffer };
  chunkHashFinal(state: Uint8Array): Buffer | null;
  chunkStats(state: Uint8Array): { stream: number; hinted: number; misses: number };
  /** BLAKE3 of data (32 bytes). */
  hash(data: Uint8Array): Buffer;
  hashEach(buffers: readonly Uint8Array[], cb: (err: Error | null, digests: Buffer) => void): void;
  /** The BLAKE3 kernel in use: "avx512", "avx2" or "portable". */
  hashKernel(): string;
  readDirStats(
    dirFd: number,
    cb: (
      err: NodeJS.ErrnoException | null,
      r: { names: Buffer; ends: Uint32Array; stats: Float64Array; bigs: BigInt64Array; errnos: Int32Array },
    ) => void,
  ): void;
  readSmallFiles(dirFd: number, job: SmallFilesJob, cb: (err: Error | null) => void): void;
  /** Sets or clears O_DIRECT on an open file; false when its file system refuses it. */
  setDirect(fd: number, on: boolean): boolean;
  /** Bytes from the buffer's start to its first address aligned for direct I/O (DIRECT_ALIGN). */
  alignOffset(buf: Uint8Array): number;
  /**
   * Bytes from the buffer's start to its first 2 MiB boundary, after advising
   * huge pages from there on (or, in a buffer without one, alignOffset).
   */
  hugeOffset(buf: Uint8Array): number;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  mknod(path: PathLike, mode: number, major: number, minor: number): void;
  listXattrs(pathOrFd: PathLike | number): Buffer[];
  getXattr(pathOrFd: PathLike | number, name: PathLike): Buffer;
  setXattr(pathOrFd: PathLike | number, name: PathLike, value: Uint8Array): void;
  renameExchange(a: PathLike, b: PathLike): void;
  syncfs(fd: number, cb: (err: Error | null) => void): void;
  setTimes(pathOrFd: PathLike | number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  /** glibc's C heap over all arenas (for diagnosis). */
  mallocStats(): { arenas: number; heapBytes: number; mmapBytes: number; inUseBytes: number; freeBytes: number };
  /** malloc_trim(0): returns the free pages of every arena to the system; true when some were. */
  mallocTrim(): boolean;
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

/**
 * HUGE_PAGES is the BufferPool alignment of large buffers: each is cut at a
 * 2 MiB boundary advised as huge pages, so that its first filling takes a
 * few page faults instead of one per 4 KiB (which cost about 13 µs each on
 * the virtual machines nodes run on). The start is aligned for direct I/O
 * too. Worth it for buffers of several MiB that are filled whole.
 */
export const HUGE_PAGES = { slack: 2 * 1024 * 1024, offset: (raw: Buffer): number => native.hugeOffset(raw) };

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

/** Hashing jobs a batch is split into, so several cores hash at once. */
const HASH_JOBS = 2;

/** hashMany hashes (BLAKE3) buffers on the thread pool and returns hex digests in order. */
export async function hashMany(buffers: readonly Uint8Array[]): Promise<string[]> {
  if (buffers.length === 0) return [];
  const per = Math.ceil(buffers.length / Math.min(HASH_JOBS, buffers.length));
  const parts: Array<Promise<Buffer>> = [];
  for (let i = 0; i < buffers.length; i += per) {
    const slice = buffers.slice(i, i + per);
    parts.push(new Promise((resolve, reject) => native.hashEach(slice, (err, d) => (err ? reject(err) : resolve(d)))));
  }
  const out: string[] = [];
  for (const d of await Promise.all(parts)) {
    for (let at = 0; at < d.length; at += 32) out.push(d.toString('hex', at, at + 32));
  }
  return out;
}

/** What lstat says about one directory entry (exact integers). */
export interface EntryStat {
  readonly name: Buffer;
  /** errno code when the entry vanished between listing and lstat. */
  readonly error: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly dev: bigint;
  readonly nlink: number;
  readonly rdev: bigint;
  readonly blocks: number;
}

const NUMS = 11;
const BIGS = 5;
const u64 = (v: bigint): bigint => (v < 0n ? BigInt.asUintN(64, v) : v);

/**
 * readDirStats lists the directory open as `dirFd` and lstats every entry,
 * off the main thread. The entries come sorted by name (Buffer.compare's
 * order, a tree's); each name is a view of one buffer holding them all.
 */
export function readDirStats(dirFd: number): Promise<EntryStat[]> {
  return new Promise((resolve, reject) =>
    native.readDirStats(dirFd, (err, r) => {
      if (err) return reject(err);
      const { names, ends, stats: n, bigs: g, errnos } = r;
      resolve(
        Array.from(ends, (end, i) => {
          const a = i * NUMS;
          const b = i * BIGS;
          const overflow = n[a + 10]!;
          return {
            name: names.subarray(i === 0 ? 0 : ends[i - 1]!, end),
            error: errnos[i]!,
            mode: n[a]!,
            uid: n[a + 1]!,
            gid: n[a + 2]!,
            size: n[a + 3]!,
            // Past 2262 a time does not fit in int64 nanoseconds: exact from seconds and nanoseconds.
            mtimeNs: overflow & 1 ? BigInt(n[a + 6]!) * NS + BigInt(n[a + 7]!) : g[b]!,
            ctimeNs: overflow & 2 ? BigInt(n[a + 8]!) * NS + BigInt(n[a + 9]!) : g[b + 1]!,
            ino: u64(g[b + 2]!),
            dev: u64(g[b + 3]!),
            nlink: n[a + 4]!,
            rdev: u64(g[b + 4]!),
            blocks: n[a + 5]!,
          };
        }),
      );
    }),
  );
}

interface SmallFilesJob {
  readonly names: Uint8Array;
  readonly sizes: Float64Array;
  readonly inos: BigUint64Array;
  readonly data: Uint8Array;
  readonly status: Int32Array;
  readonly digests: Uint8Array;
}

/** A readSmallFiles status: the name is no longer the regular file listed (type or inode differ). */
export const SMALL_REPLACED = -100000;
/** A readSmallFiles status: the file has extended attributes (or listing them failed); read it alone. */
export const SMALL_XATTRS = -100001;

/** What readSmallFiles read: file i's bytes are data[start[i], start[i] + status[i]). */
export interface SmallFiles {
  readonly data: Buffer;
  readonly start: readonly number[];
  /** Bytes read (at most the size asked), -errno, SMALL_REPLACED or SMALL_XATTRS. */
  readonly status: Int32Array;
  /** BLAKE3 of each file's bytes, 32 bytes each (where status >= 0). */
  readonly digests: Buffer;
}

/**
 * readSmallFiles opens (O_NOFOLLOW|O_NONBLOCK), fstat-checks (a regular file
 * with the listed inode), reads up to `sizes[i]` bytes of and hashes each of
 * `names` in the directory open as `dirFd`, all in one thread-pool job: one
 * hop for many files instead of open, fstat, read and close for each.
 * The bytes go into `into` when it is large enough (a buffer the caller
 * reuses: one allocated per batch is garbage V8 collects late), else into
 * a new buffer.
 */
export function readSmallFiles(
  dirFd: number,
  names: readonly Buffer[],
  sizes: readonly number[],
  inos: readonly bigint[],
  into?: Buffer,
): Promise<SmallFiles> {
  const count = names.length;
  let nameBytes = 0;
  for (const n of names) nameBytes += n.length + 1;
  const nameBuf = Buffer.allocUnsafe(nameBytes);
  const start: number[] = new Array<number>(count);
  let at = 0;
  let total = 0;
  for (let i = 0; i < count; i++) {
    at += names[i]!.copy(nameBuf, at);
    nameBuf[at++] = 0;
    start[i] = total;
    total += sizes[i]!;
  }
  const job: SmallFilesJob = {
    names: nameBuf,
    sizes: Float64Array.from(sizes),
    inos: BigUint64Array.from(inos),
    data: into && into.length >= total ? into : Buffer.allocUnsafeSlow(total),
    status: new Int32Array(count),
    digests: Buffer.allocUnsafeSlow(count * 32),
  };
  return new Promise((resolve, reject) =>
    native.readSmallFiles(dirFd, job, (err) =>
      err ? reject(err) : resolve({ data: job.data as Buffer, start, status: job.status, digests: job.digests as Buffer }),
    ),
  );
}
