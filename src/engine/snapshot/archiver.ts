/**
 * archiver: walks a directory tree and turns it into trees and data blobs.
 *
 * Order and concurrency: each directory is listed, its names sorted by bytes,
 * and its entries processed by a small pool of workers; subdirectories
 * recurse with their own pool, sized from a global budget so the total work
 * in flight stays bounded (at least one worker per directory, so the walk
 * always progresses). File contents are read under a separate limit. Memory
 * is bounded by the directories in progress, not by the data.
 *
 * Safety: every path is relative to an open directory descriptor (fsx.ts)
 * and nothing is followed: symlinks are recorded verbatim, special files are
 * never opened, and a regular file is opened with O_NOFOLLOW|O_NONBLOCK and
 * checked with fstat.
 *
 * Incremental: with a parent, a file whose type, size, mtime, ctime, inode
 * and mode are unchanged, and whose ctime is older than the parent's scan
 * start (a file changed in the same clock tick as that scan is "racily
 * clean" and must be re-read), reuses the parent's content without reading.
 */
import { constants as osConstants } from 'node:os';
import { AbortedError, isErrno } from '../../core/errors.js';
import type { GearConfig } from '../chunker/gear.js';
import { BlobType } from '../format/blob.js';
import type { SkippedEntry, SnapshotStats } from '../format/snapshot-record.js';
import { type TreeNode, compareNames, encodeTree, sameNodes } from '../format/tree.js';
import { HeapTrimmer } from '../util/heap-trim.js';
import * as fsx from '../fsx/fsx.js';
import { type ProgressFn, ProgressTracker } from '../util/progress.js';
import { Semaphore } from '../util/semaphore.js';
import { WorkBudget } from '../util/work-budget.js';
import { type FileContent, FileReader, SMALL_FILE, isZero } from './file-reader.js';
import { type EntryStat, SMALL_REPLACED, SMALL_XATTRS, type SmallFiles, readDirStats, readSmallFiles } from '../native.js';
import {
  type MutableNode,
  type StatLike,
  baseNode,
  devMajor,
  devMinor,
  fromBigIntStats,
  readXattrs,
  typeOf,
  unchanged,
} from './node-stat.js';
import { scanTotals } from './scanner.js';

/** Decides about one entry that could not be read: skip it, or fail the snapshot. */
export type EntryErrorFn = (path: string, err: unknown) => 'skip' | 'fail';

/** The default: entries that vanish or can't be read are skipped, other errors fail. */
export const defaultEntryError: EntryErrorFn = (_path, err) =>
  isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES', 'EPERM', 'ENXIO') ? 'skip' : 'fail';

export interface ArchiveDeps {
  readonly gear: GearConfig;
  readTree(id: string): Promise<readonly TreeNode[]>;
  /** hasBlob tells whether a blob is stored (or being stored) in this repository. */
  hasBlob(id: string): boolean;
  /** saveBlob stores a blob unless present and returns its id (hashing it unless given). */
  saveBlob(type: BlobType, raw: Buffer, id?: string): Promise<string>;
  /** treeSaved is told each directory listing stored (with its encoding) or reused (without), by tree id. */
  treeSaved?(id: string, nodes: readonly TreeNode[], encoded?: Buffer): void;
}

export interface ArchiveOptions {
  /** The snapshot (or draft) to compare against, for incremental capture. */
  readonly parent?: { readonly root: TreeNode; readonly scanStartNs: bigint } | null;
  readonly onProgress?: ProgressFn;
  readonly onError?: EntryErrorFn;
  readonly signal?: AbortSignal;
  /** Count files and bytes first (concurrently) so progress has totals. Default false. */
  readonly scanTotals?: boolean;
}

/** One directory to capture: at the root (unnamed) or as a named child of a synthetic root. */
export interface Source {
  readonly name: string | null;
  readonly path: string;
}

export interface ArchiveResult {
  readonly root: TreeNode;
  readonly scanStartNs: bigint;
  readonly stats: Omit<SnapshotStats, 'newBlobs' | 'newBytes' | 'storedBytes' | 'durationMs'>;
  readonly skipped: readonly SkippedEntry[];
}

/** errnoError builds the error of an entry whose lstat (or another call) failed. */
function errnoError(errno: number, path: string, syscall = 'lstat'): NodeJS.ErrnoException {
  const code = Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? 'EIO';
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} failed, ${path}`);
  err.code = code;
  err.errno = -errno;
  return err;
}

/**
 * matchParent gives each entry the parent's node of the same name, or
 * undefined: one pass over both lists, which are sorted by name (a tree's
 * nodes are; readDirStats lists entries so). A map by name cost a string
 * per node and per entry.
 */
export function matchParent(entries: readonly { readonly name: Buffer }[], parent: readonly TreeNode[]): (TreeNode | undefined)[] {
  const out = new Array<TreeNode | undefined>(entries.length).fill(undefined);
  let j = 0;
  for (let i = 0; i < entries.length && j < parent.length; i++) {
    const name = entries[i]!.name;
    let c: number;
    while ((c = compareNames(parent[j]!.name, name)) < 0 && ++j < parent.length);
    if (c === 0) out[i] = parent[j++];
  }
  return out;
}

/** byName maps a listing's nodes by name (as latin1, a lossless key for bytes). */
function byName(nodes: readonly TreeNode[]): Map<string, TreeNode> {
  const m = new Map<string, TreeNode>();
  for (const n of nodes) m.set(n.name.toString('latin1'), n);
  return m;
}

/** Workers per directory, and the global budget of extra workers. */
const PER_DIR_WORKERS = 16;
const GLOBAL_EXTRA_WORKERS = 48;
const MAX_SKIPPED_LISTED = 100;
/** Small files are read in batches of at most this many files and bytes; a few batches are read or being stored at a time. */
const BATCH_FILES = 128;
const BATCH_BYTES = 1024 * 1024;
const BATCH_SLOTS = 3;
/** Files up to this size (and the chunker's minimum: one chunk) are read in batches. */
const BATCH_FILE_MAX = 64 * 1024;
/** How much earlier than the clock a scan's start is recorded (see run()). */
export const SCAN_START_MARGIN_MS = 20;

/** The statistics a capture counts itself (the session adds storage figures). */
type Counters = { -readonly [K in keyof ArchiveResult['stats']]: number };

/** Archiver captures sources into trees. One instance per capture. */
export class Archiver {
  private readonly counters: Counters = {
    files: 0,
    dirs: 0,
    symlinks: 0,
    specials: 0,
    skipped: 0,
    bytes: 0,
    bytesRead: 0,
    filesReused: 0,
  };
  private readonly skippedList: SkippedEntry[] = [];
  /** Content of inodes with several names, so each is read once. */
  private readonly links = new Map<string, Promise<FileContent>>();
  /** Small files are read 8 at a time; large ones 2 at a time (memory). */
  private readonly readSlots = new Semaphore(8);
  private readonly bigReadSlots = new Semaphore(2);
  private readonly batchSlots = new Semaphore(BATCH_SLOTS);
  /** Buffers of batches read and stored, for the next (at most BATCH_SLOTS). */
  private readonly batchBuffers: Buffer[] = [];
  private readonly batchFileMax: number;
  private readonly budget = new WorkBudget(GLOBAL_EXTRA_WORKERS, PER_DIR_WORKERS);
  /**
   * Listings, batches and pack buffers leave the C heap's arenas with free
   * but resident pages (60–90 MB at 5,000,000 files): they go back when the
   * process nears its memory goal (heap-trim.ts).
   */
  private readonly trimmer = new HeapTrimmer({ everyFiles: 8192, aboveRss: 300 * 1024 * 1024 });
  private readonly progress: ProgressTracker;
  private readonly reader: FileReader;
  private readonly parentScanStartNs: bigint;
  private readonly onError: EntryErrorFn;

  constructor(
    private readonly deps: ArchiveDeps,
    private readonly opts: ArchiveOptions = {},
  ) {
    this.parentScanStartNs = opts.parent?.scanStartNs ?? 0n;
    this.onError = opts.onError ?? defaultEntryError;
    this.progress = new ProgressTracker(opts.onProgress);
    this.batchFileMax = Math.min(BATCH_FILE_MAX, deps.gear.minSize);
    this.reader = new FileReader({
      gear: deps.gear,
      saveBlob: deps.saveBlob,
      hasBlob: deps.hasBlob,
      progress: this.progress,
      checkAbort: () => this.checkAbort(),
      onRead: (n) => {
        this.counters.bytesRead += n;
      },
    });
  }

  /**
   * run captures `sources`. One unnamed source becomes the root itself;
   * named sources become children of a synthetic root directory.
   */
  async run(sources: readonly Source[]): Promise<ArchiveResult> {
    // File timestamps come from the kernel's coarse clock, which may lag the
    // precise one by a tick (≤ 10 ms): start the "racily clean" window a
    // little early so a file changed during this scan can never look older.
    const scanStartNs = BigInt(Date.now() - SCAN_START_MARGIN_MS) * 1_000_000n;
    const parentRoot = this.opts.parent?.root ?? null;
    if (this.opts.scanTotals) {
      // Totals are a nicety: the capture reports its own errors.
      scanTotals(sources.map((s) => s.path)).then(
        (t) => {
          this.progress.filesTotal = t.files;
          this.progress.bytesTotal = t.bytes;
        },
        () => undefined,
      );
    }
    let root: TreeNode;
    if (sources.length === 1 && sources[0]!.name === null) {
      root = await this.captureTop(sources[0]!.path, Buffer.alloc(0), parentRoot?.subtree);
    } else {
      const parentChildren = parentRoot?.subtree ? await this.parentMap(parentRoot.subtree) : null;
      const sorted = [...sources].sort((a, b) => Buffer.compare(Buffer.from(a.name ?? ''), Buffer.from(b.name ?? '')));
      const nodes: TreeNode[] = [];
      for (const s of sorted) {
        if (s.name === null) throw new Error('named and unnamed sources cannot be mixed');
        const name = Buffer.from(s.name);
        const p = parentChildren?.get(name.toString('latin1'));
        nodes.push(await this.captureTop(s.path, name, p?.type === 'dir' ? p.subtree : undefined));
      }
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i - 1]!.name === sorted[i]!.name) throw new Error(`source name ${sorted[i]!.name} given twice`);
      }
      const subtree = await this.deps.saveBlob(BlobType.Tree, encodeTree(nodes));
      root = {
        name: Buffer.alloc(0),
        type: 'dir',
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtimeNs: scanStartNs,
        ctimeNs: scanStartNs,
        ino: 0n,
        nlink: 1,
        size: 0,
        subtree,
      };
    }
    this.progress.emit(true);
    return { root, scanStartNs, stats: { ...this.counters }, skipped: this.skippedList };
  }

  private async captureTop(path: string, name: Buffer, parentSubtree: string | undefined): Promise<TreeNode> {
    // The operator named this directory: following a symlink to it is fine.
    const fd = await fsx.open(path, fsx.OPEN_TOP_DIR);
    try {
      const node = baseNode(name, 'dir', fromBigIntStats(await fsx.fstat(fd, { bigint: true })));
      node.xattrs = readXattrs(fd);
      node.subtree = await this.captureDir(fd, path, parentSubtree);
      this.counters.dirs++;
      return node;
    } finally {
      await fsx.close(fd);
    }
  }

  private async parentMap(treeId: string): Promise<Map<string, TreeNode>> {
    return byName(await this.deps.readTree(treeId));
  }

  private checkAbort(): void {
    if (this.opts.signal?.aborted) throw new AbortedError('snapshot');
  }

  /** captureDir captures the directory open as `dirFd` and returns its tree id. */
  private async captureDir(dirFd: number, path: string, parentSubtree: string | undefined): Promise<string> {
    this.checkAbort();
    // The parent's listing is read while this one is listed (both wait on the thread pool).
    const parentRead = parentSubtree ? this.deps.readTree(parentSubtree) : null;
    parentRead?.catch(() => undefined); // awaited below, unless listing fails first
    const entries = await readDirStats(dirFd); // sorted by name, as a tree's nodes
    const parentNodes = parentRead ? await parentRead : null;
    const previousOf = parentNodes ? matchParent(entries, parentNodes) : null;
    const nodes: (TreeNode | null)[] = new Array<TreeNode | null>(entries.length).fill(null);
    // Small regular files with one name that must be read are read in
    // batches (readSmall); every other entry on its own.
    const small: number[] = [];
    const single: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const st = entries[i]!;
      const regular = st.error === 0 && (st.mode & fsx.S_IFMT) === fsx.S_IFREG;
      const previous = regular ? previousOf?.[i] : undefined;
      if (regular && st.nlink === 1 && previous?.nlink === 1 && previous.linkGroup === undefined && this.reusable(previous, st)) {
        // Unchanged, with one name as before (most files of an incremental):
        // its node is the parent's, taken here rather than by a task of its
        // own, which allocated more than the rest of the walk.
        nodes[i] = previous;
        this.countReused(previous);
        continue;
      }
      const batched = regular && st.nlink === 1 && st.size <= this.batchFileMax && !unchanged(previous, st, this.parentScanStartNs);
      (batched ? small : single).push(i);
    }
    const settle = async (i: number, capture: (childPath: string) => Promise<TreeNode | null>): Promise<void> => {
      const childPath = `${path}/${entries[i]!.name.toString()}`;
      try {
        nodes[i] = await capture(childPath);
      } catch (err) {
        if (err instanceof AbortedError || this.onError(childPath, err) === 'fail') throw err;
        this.skip(childPath, err instanceof Error ? err.message : String(err));
      }
    };
    const captureOne = (i: number): Promise<void> =>
      settle(i, (childPath) => {
        const st = entries[i]!;
        if (st.error) throw errnoError(st.error, childPath);
        return this.captureEntry(dirFd, st, childPath, previousOf?.[i]);
      });
    const done = await Promise.allSettled([
      this.budget.forEach(single, (i) => captureOne(i)),
      this.readSmall(dirFd, entries, small, settle, captureOne),
    ]);
    for (const d of done) if (d.status === 'rejected') throw d.reason;
    const kept = nodes.filter((n): n is TreeNode => n !== null);
    this.trimmer.filesDone(entries.length);
    // Nothing changed here (the usual case): the listing is the parent's tree.
    if (parentNodes && sameNodes(kept, parentNodes)) {
      this.deps.treeSaved?.(parentSubtree!, parentNodes);
      return parentSubtree!;
    }
    const encoded = encodeTree(kept);
    const id = await this.deps.saveBlob(BlobType.Tree, encoded);
    this.deps.treeSaved?.(id, kept, encoded);
    return id;
  }

  /**
   * readSmall captures the regular files `which` of a directory's entries,
   * each small and with one name, a batch at a time: one thread-pool job
   * opens, checks (a regular file with the inode listed), reads and hashes
   * a batch (native readSmallFiles), and its blobs are stored while the
   * next batch is read. A file with extended attributes is captured on its
   * own (captureOne), as every other entry.
   */
  private async readSmall(
    dirFd: number,
    entries: readonly EntryStat[],
    which: readonly number[],
    settle: (i: number, capture: (childPath: string) => Promise<TreeNode | null>) => Promise<void>,
    captureOne: (i: number) => Promise<void>,
  ): Promise<void> {
    let storing: Promise<unknown> = Promise.resolve();
    try {
      for (let from = 0; from < which.length;) {
        this.checkAbort();
        let to = from;
        let bytes = 0;
        while (to < which.length && to - from < BATCH_FILES && (to === from || bytes + entries[which[to]!]!.size <= BATCH_BYTES)) {
          bytes += entries[which[to]!]!.size;
          to++;
        }
        const batch = which.slice(from, to);
        from = to;
        const sts = batch.map((i) => entries[i]!);
        await this.batchSlots.acquire();
        const buffer = this.batchBuffers.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
        const done = (): void => {
          this.batchBuffers.push(buffer);
          this.batchSlots.release();
        };
        let read: SmallFiles;
        try {
          read = await readSmallFiles(
            dirFd,
            sts.map((st) => st.name),
            sts.map((st) => st.size),
            sts.map((st) => st.ino),
            buffer,
          );
        } catch (err) {
          done();
          throw err;
        }
        await storing;
        const saves: Array<Promise<void>> = [];
        for (let k = 0; k < batch.length; k++) {
          const i = batch[k]!;
          const status = read.status[k]!;
          if (status === SMALL_XATTRS) saves.push(captureOne(i));
          else saves.push(settle(i, (childPath) => this.storeSmall(sts[k]!, childPath, read, k, status)));
        }
        // The slot and the buffer are held until every store of the batch
        // has settled (stores copy what they keep): what is read and not yet
        // stored stays within BATCH_SLOTS reused buffers, however many
        // directories are in progress.
        storing = Promise.allSettled(saves).then((results) => {
          done();
          for (const r of results) if (r.status === 'rejected') throw r.reason;
        });
        storing.catch(() => undefined); // awaited with the next batch or below
      }
    } finally {
      await storing.catch(() => undefined);
    }
    await storing;
  }

  /** storeSmall makes the node of the k-th file of a batch read by readSmallFiles, and stores its content. */
  private async storeSmall(st: EntryStat, path: string, read: SmallFiles, k: number, status: number): Promise<TreeNode> {
    if (status === SMALL_REPLACED) {
      const err: NodeJS.ErrnoException = new Error('file was replaced while being read');
      err.code = 'ENOENT';
      throw err;
    }
    if (status < 0) throw errnoError(-status, path, 'read');
    const node = baseNode(st.name, 'file', st);
    node.size = status;
    node.content = [];
    this.counters.bytesRead += status;
    this.progress.bytes(status);
    this.progress.file(0);
    if (status > 0) {
      const data = read.data.subarray(read.start[k]!, read.start[k]! + status);
      if (isZero(data)) {
        node.content = [{ id: null, length: status }];
      } else {
        const id = read.digests.toString('hex', 32 * k, 32 * k + 32);
        try {
          await this.deps.saveBlob(BlobType.Data, data, id);
        } catch (err) {
          if (err instanceof Error && !(err as NodeJS.ErrnoException).code && !(err instanceof AbortedError)) {
            throw new Error(`${path}: ${err.message}`, { cause: err });
          }
          throw err;
        }
        node.content = [{ id, length: status }];
      }
    }
    this.counters.files++;
    this.counters.bytes += status;
    return node;
  }

  private skip(path: string, reason: string): void {
    this.counters.skipped++;
    if (this.skippedList.length < MAX_SKIPPED_LISTED) this.skippedList.push({ path, reason });
  }

  private async captureEntry(dirFd: number, st: EntryStat, path: string, parent: TreeNode | undefined): Promise<TreeNode | null> {
    this.checkAbort();
    const name = st.name;
    const p = fsx.at(dirFd, name);
    const type = typeOf(st.mode);
    switch (type) {
      case 'file':
        return this.captureFile(dirFd, name, path, st, parent);
      case 'dir': {
        const fd = await fsx.open(p, fsx.OPEN_DIR);
        try {
          const node = baseNode(name, 'dir', fromBigIntStats(await fsx.fstat(fd, { bigint: true })));
          node.xattrs = readXattrs(fd);
          node.subtree = await this.captureDir(fd, path, parent?.type === 'dir' ? parent.subtree : undefined);
          this.counters.dirs++;
          return node;
        } finally {
          await fsx.close(fd);
        }
      }
      case 'symlink': {
        const node = baseNode(name, 'symlink', st);
        node.target = await fsx.readlink(p, { encoding: 'buffer' }).catch((err: unknown) => {
          // EINVAL: no longer a symlink (replaced since it was listed): like a vanished entry.
          if (isErrno(err, 'EINVAL')) throw errnoError(osConstants.errno.ENOENT, path);
          throw err;
        });
        node.xattrs = readXattrs(p);
        this.counters.symlinks++;
        return node;
      }
      case 'fifo':
      case 'chardev':
      case 'blockdev': {
        const node = baseNode(name, type, st);
        if (type !== 'fifo') {
          node.rdevMajor = devMajor(st.rdev);
          node.rdevMinor = devMinor(st.rdev);
        }
        node.xattrs = readXattrs(p);
        this.counters.specials++;
        return node;
      }
      case 'socket':
        this.skip(path, 'socket (sockets are not captured)');
        return null;
      default:
        this.skip(path, 'unknown file type');
        return null;
    }
  }

  /** reusable tells whether the parent's node of a file holds its content: unchanged since, every chunk still stored. */
  private reusable(parent: TreeNode | undefined, st: StatLike): parent is TreeNode {
    return unchanged(parent, st, this.parentScanStartNs) && parent.content!.every((c) => c.id === null || this.deps.hasBlob(c.id));
  }

  private countReused(node: TreeNode): void {
    this.counters.files++;
    this.counters.filesReused++;
    this.counters.bytes += node.size;
    this.progress.file(node.size);
  }

  private async captureFile(dirFd: number, name: Buffer, path: string, st: StatLike, parent: TreeNode | undefined): Promise<TreeNode> {
    const linkKey = st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
    if (this.reusable(parent, st)) {
      const node: MutableNode = { ...parent, name, nlink: st.nlink };
      if (linkKey) {
        node.linkGroup = linkKey;
        if (!this.links.has(linkKey)) this.links.set(linkKey, Promise.resolve({ content: [...parent.content!], size: parent.size }));
      } else {
        delete node.linkGroup;
      }
      this.countReused(node);
      return node;
    }
    const node = baseNode(name, 'file', st);
    if (linkKey) {
      node.linkGroup = linkKey;
      let shared = this.links.get(linkKey);
      if (shared) {
        // Another name of an inode read already (or being read): share its content.
        const { content, size } = await shared;
        node.content = content;
        node.size = size;
        node.xattrs = readXattrs(fsx.at(dirFd, name));
        this.progress.file(size);
      } else {
        shared = this.readFile(dirFd, name, path, st, node, parent);
        this.links.set(linkKey, shared);
        const { content, size } = await shared;
        node.content = content;
        node.size = size;
      }
    } else {
      const { content, size } = await this.readFile(dirFd, name, path, st, node, parent);
      node.content = content;
      node.size = size;
    }
    this.counters.files++;
    this.counters.bytes += node.size;
    return node;
  }

  /**
   * readFile reads and stores a file's content; it sets node.xattrs from the
   * open file. `previous` (the parent's node at this path) lends its chunks as hints.
   */
  private async readFile(
    dirFd: number,
    name: Buffer,
    path: string,
    st: StatLike,
    node: MutableNode,
    previous: TreeNode | undefined,
  ): Promise<FileContent> {
    const size = st.size;
    const slots = size > SMALL_FILE ? this.bigReadSlots : this.readSlots;
    await slots.acquire();
    let fd: number | null = null;
    try {
      fd = await fsx.open(fsx.at(dirFd, name), fsx.OPEN_READ);
      const fst = await fsx.fstat(fd, { bigint: true });
      if (typeOf(Number(fst.mode)) !== 'file' || fst.ino !== st.ino) {
        const err: NodeJS.ErrnoException = new Error('file was replaced while being read');
        err.code = 'ENOENT';
        throw err;
      }
      node.xattrs = readXattrs(fd);
      const result = await this.reader.read(fd, size, previous?.type === 'file' ? previous.content : undefined);
      this.progress.file(0);
      return result;
    } catch (err) {
      if (err instanceof Error && !(err as NodeJS.ErrnoException).code && !(err instanceof AbortedError)) {
        throw new Error(`${path}: ${err.message}`, { cause: err });
      }
      throw err;
    } finally {
      if (fd !== null) await fsx.close(fd);
      slots.release();
    }
  }
}
