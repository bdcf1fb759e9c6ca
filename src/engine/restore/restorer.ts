/**
 * restorer: writes a snapshot's tree, or a selection of its paths, into an
 * empty directory.
 *
 * Selection (`include`): only the chosen entries are restored whole, with
 * the directories leading to them (with their own metadata, but none of
 * their other entries); trees outside the chosen paths are never read, nor
 * the blobs of files outside them.
 *
 * Safety: the target is opened once (never through a symlink) and every
 * entry is created relative to the open descriptor of its parent directory,
 * which this restore itself created (fsx.ts). Files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW; names were validated when the tree was decoded
 * (no ".", "..", "/", NUL, duplicates). So whatever a snapshot holds, nothing
 * is created or written outside the target, and never through a symlink.
 *
 * Integrity: every chunk is checked against its hash as it is read; a
 * mismatch aborts the restore with an error naming the snapshot and file,
 * and the bad bytes are never written.
 *
 * Pipeline: this thread only plans. Directories are walked with bounded
 * parallelism (WorkBudget), files are created and opened here, and each
 * chunk is handed with its place (descriptor, offset) to a BlobFetcher
 * (blob-fetcher.ts), which reads the chunks wanted at the same time as
 * sorted, merged pack ranges; worker threads (decode-pool.ts) read the range
 * (when the repository is on a local filesystem), decompress and verify
 * each chunk and write it where it goes, within a byte budget. A file
 * places its chunks in order: it waits for budget only when it has none
 * placed, and looks ahead (up to LOOKAHEAD_BYTES) only when the budget has
 * room, so waiting files never hold what others need. Small files go in
 * batches: budget for the whole batch, then every file created, then all
 * their chunks placed at once (one sorted set of reads); the next batch is
 * created while this one is written. Once every chunk of a file is
 * written, its metadata is applied and it is closed.
 *
 * Descriptors: a file is closed only after every write placed at it has
 * settled, also when the restore fails or is cancelled, so a worker never
 * writes to a descriptor that was closed (and maybe reused by another open).
 *
 * Fidelity: holes stay holes (only data chunks are written, into a file
 * given its length with ftruncate first), hardlinks are restored as links, owners when running
 * as root, then modes (after chown, which clears setuid bits), extended
 * attributes and exact timestamps, directories' after their children.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { closeSync, fchmodSync, fchownSync } from 'node:fs';
import path from 'node:path';
import { CorruptionError, KovaError, TargetNotEmptyError, isErrno } from '../../core/errors.js';
import type { SkippedEntry, SnapshotRecord } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { native, setTimesNs, syncfs } from '../native.js';
import { type ProgressFn, ProgressTracker } from '../util/progress.js';
import { asDiskFull } from '../util/disk-space.js';
import { Semaphore } from '../util/semaphore.js';
import { WorkBudget } from '../util/work-budget.js';
import { HeapTrimmer } from '../util/heap-trim.js';
import { type SpaceNeed, addNeeds, checkSpace, restoreFootprint, roomFor, spaceBound } from './space.js';
import { PathNotFoundError, resolvePath, showPath } from '../browse/browse.js';
import type { BlobLocation } from '../format/blob.js';
import type { BlobCodec } from '../repo/codec.js';
import { BlobFetcher, type FetchOptions, type Placement, type Reservation } from './blob-fetcher.js';
import { DecodePool, type DecodePoolOptions, type FileWritten } from './decode-pool.js';

export interface RestoreOptions {
  readonly onProgress?: ProgressFn;
  readonly signal?: AbortSignal;
  /** Restore only this child of the snapshot's root (a named source). */
  readonly subpath?: string;
  /**
   * Restore only these entries (name components below the restored root,
   * after `subpath`) and the directories leading to them. A path below
   * another chosen one is part of it. A path the snapshot lacks, or one
   * that continues below something that is not a directory, fails the
   * restore (PathNotFoundError) before anything is written. Default: all.
   */
  readonly include?: readonly (readonly Buffer[])[];
  /** Flush the target's filesystem before returning. Default false. */
  readonly sync?: boolean;
  /**
   * Refuse (InsufficientSpaceError) before writing anything when the
   * target's filesystem has less room than the restore needs (space.ts).
   * Default true; a caller that checked already for several restores turns it off.
   */
  readonly checkSpace?: boolean;
  /** Tuning of the read pipeline (defaults in blob-fetcher.ts and decode-pool.ts). */
  readonly pipeline?: FetchOptions & DecodePoolOptions;
}

export interface RestoreResult {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  /** Entries not restored (device nodes without root, refused attributes). */
  readonly skipped: readonly SkippedEntry[];
}

/** The narrow view of a repository a restore needs. */
export interface BlobSource {
  readTree(id: string): Promise<readonly TreeNode[]>;
  readBlob(id: string): Promise<Buffer>;
}

/**
 * A repository the restore can read whole pack ranges from (Repository is
 * one); any other BlobSource is read blob by blob.
 */
export interface PackedBlobSource extends BlobSource {
  readonly codec: BlobCodec;
  readonly storage: { readAt(name: string, offset: number, length: number): Promise<Buffer>; localPath?(name: string): string | undefined };
  loadIndex(): Promise<{ get(id: string): BlobLocation | undefined }>;
}

function isPacked(src: BlobSource): src is PackedBlobSource {
  const s = src as Partial<PackedBlobSource>;
  return typeof s.loadIndex === 'function' && typeof s.storage?.readAt === 'function' && s.codec !== undefined;
}

/** Where a file's chunks come from and are written: a BlobFetcher, or blob by blob from a plain source. */
interface ChunkSource {
  reserve(ids: readonly string[]): Promise<Reservation>;
  tryReserve(ids: readonly string[]): Reservation | null;
}

/** directSource reads each blob on this thread (the source verifies it) and writes it. */
function directSource(src: BlobSource): ChunkSource {
  const reservation: Reservation = {
    place: (id, t) => {
      const done = src.readBlob(id).then((data) => fsx.writeFull(t.fd, data, t.offset));
      done.catch(() => undefined); // handled when awaited
      return { done, cancel: () => undefined, release: () => undefined };
    },
    release: () => undefined,
  };
  return { reserve: async () => reservation, tryReserve: () => reservation };
}

/**
 * What to restore below a directory: null for everything, else its chosen
 * children by name (latin1 of the raw bytes), each with its own selection.
 */
type Selection = Map<string, Selection | null> | null;

/** selectionOf builds the selection tree of `paths`; a path below another chosen one is merged into it. */
export function selectionOf(paths: readonly (readonly Buffer[])[]): Selection {
  const top: Map<string, Selection | null> = new Map();
  for (const p of [...paths].sort((a, b) => a.length - b.length)) {
    if (p.length === 0) return null;
    let at: Map<string, Selection | null> = top;
    for (let i = 0; i < p.length; i++) {
      const key = p[i]!.toString('latin1');
      if (i === p.length - 1) {
        at.set(key, null);
        break;
      }
      if (at.has(key) && at.get(key) === null) break; // inside a path chosen whole
      let next = at.get(key);
      if (!next) {
        next = new Map();
        at.set(key, next);
      }
      at = next;
    }
  }
  return top;
}

/** Files up to this size are restored in batches whose chunks are fetched together. */
const SMALL_FILE = 256 * 1024;
/** A batch of small files holds at most this many bytes and files. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_FILES = 512;
/** Small files open at once, across all batches (two batches per directory may be in flight). */
const SMALL_OPEN = 2048;

/** The chunk ids of a file, in order. */
const chunkIds = (node: TreeNode): string[] => (node.content ?? []).flatMap((c) => (c.id === null ? [] : [c.id]));

/**
 * Bytes of its next chunks a file asks for while it writes the current one:
 * four of the fetcher's 8 MiB ranges, so that a single large file keeps
 * every decode thread busy (with 8 MiB, an 8 GiB file was restored about one
 * range at a time, on one thread). Half the default budget, and only taken
 * while the budget has room.
 */
const LOOKAHEAD_BYTES = 32 * 1024 * 1024;
/** Hardlink sources with longer paths below the target are reached through a held directory. */
const LINK_PATH_MAX = 3000;
const IS_ROOT = process.getuid?.() === 0;

/** Slots: a counting semaphore whose holders take several slots at once; waiters are served in FIFO order. */
class Slots {
  private readonly waiters: Array<{ n: number; wake: () => void }> = [];

  constructor(private free: number) {}

  /** acquire waits until `n` slots are free (`n` must not exceed the total). */
  async acquire(n: number): Promise<void> {
    if (this.waiters.length === 0 && this.free >= n) {
      this.free -= n;
      return;
    }
    await new Promise<void>((wake) => this.waiters.push({ n, wake }));
  }

  release(n: number): void {
    this.free += n;
    while (this.waiters.length > 0 && this.free >= this.waiters[0]!.n) {
      const w = this.waiters.shift()!;
      this.free -= w.n;
      w.wake();
    }
  }
}

/** prepareTarget creates `target` or checks it is an empty real directory. */
async function prepareTarget(target: string): Promise<void> {
  let st;
  try {
    st = await fs.lstat(target);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await fs.mkdir(target, { mode: 0o700 });
    return;
  }
  if (!st.isDirectory()) throw new TargetNotEmptyError(target);
  if ((await fs.readdir(target)).length > 0) throw new TargetNotEmptyError(target);
}

export class Restorer {
  private readonly budget = new WorkBudget(32, 8);
  private readonly bigFiles = new Semaphore(4);
  private readonly smallOpen = new Slots(SMALL_OPEN);
  private readonly links = new Map<string, Promise<Buffer | null>>();
  private readonly skipped: SkippedEntry[] = [];
  private files = 0;
  private dirs = 0;
  private readonly progress: ProgressTracker;
  private rootFd = -1;
  /** Directories held open as hardlink sources (see linkSource). */
  private readonly heldDirs: number[] = [];
  private chunks: ChunkSource | null = null;
  private fetcher: BlobFetcher | null = null;
  private decoder: DecodePool | null = null;
  private failure: { err: unknown } | null = null;
  /** Many small files leave the C heap fragmented: its free pages go back now and then (heap-trim.ts). */
  private readonly trimmer = new HeapTrimmer();

  constructor(
    private readonly src: BlobSource,
    private readonly snapshot: SnapshotRecord,
    private readonly opts: RestoreOptions = {},
  ) {
    this.progress = new ProgressTracker(opts.onProgress);
    if (opts.subpath === undefined) {
      this.progress.filesTotal = snapshot.stats.files;
      this.progress.bytesTotal = snapshot.stats.bytes;
    }
  }

  async run(target: string): Promise<RestoreResult> {
    const abs = path.resolve(target);
    let root: TreeNode = this.snapshot.root;
    if (this.opts.subpath !== undefined) {
      const child = (await this.src.readTree(root.subtree!)).find((n) => n.name.toString() === this.opts.subpath);
      if (!child || child.type !== 'dir') {
        throw new KovaError('PATH_NOT_FOUND', `snapshot ${this.snapshot.id} has no directory ${this.opts.subpath}`, { status: 404 });
      }
      root = child;
    }
    const selection = this.opts.include ? selectionOf(this.opts.include) : null;
    const chosen: TreeNode[] = [root];
    if (this.opts.include) {
      chosen.length = 0;
      for (const p of this.opts.include) chosen.push(await resolvePath(this.src, root, p));
    }
    if (this.opts.checkSpace !== false && !(await roomFor(abs, spaceBound(this.snapshot.stats)))) {
      const needs: SpaceNeed[] = [];
      // Chosen entries, one inside another counted twice at worst: a conservative need.
      for (const node of chosen)
        needs.push(await restoreFootprint(this.src, node, (err, dir) => this.named(err, `directory /${this.display(dir)}`)));
      await checkSpace('restore', abs, addNeeds(needs));
    }
    await prepareTarget(abs);
    if (isPacked(this.src)) {
      const index = await this.src.loadIndex();
      const storage = this.src.storage;
      this.decoder = new DecodePool(this.src.codec, this.opts.pipeline);
      this.fetcher = new BlobFetcher(
        {
          locate: (id) => index.get(id),
          readAt: (name, offset, length) => storage.readAt(name, offset, length),
          localPath: (name) => storage.localPath?.(name),
        },
        this.decoder,
        this.opts.pipeline,
      );
      this.chunks = this.fetcher;
    } else {
      this.chunks = directSource(this.src);
    }
    this.rootFd = await fsx.open(abs, fsx.OPEN_DIR);
    const stop = (): void => this.decoder?.stopFiles();
    this.opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      await this.restoreDir(this.rootFd, root.subtree!, [], selection);
      await this.applyMeta(this.rootFd, root, abs);
      if (this.opts.sync) await syncfs(this.rootFd);
    } catch (err) {
      throw await asDiskFull(err, 'restore target', abs);
    } finally {
      this.opts.signal?.removeEventListener('abort', stop);
      await fsx.close(this.rootFd);
      for (const fd of this.heldDirs.splice(0)) await fsx.close(fd);
      this.fetcher?.close();
      await this.decoder?.close();
    }
    this.progress.emit(true);
    return { files: this.files, dirs: this.dirs, bytes: this.progress.bytesDone, skipped: this.skipped };
  }

  private display(rel: readonly Buffer[]): string {
    return rel.map((b) => b.toString()).join('/');
  }

  /** checkAbort stops work once the restore is cancelled or has failed elsewhere. */
  private checkAbort(): void {
    if (this.failure) throw this.failure.err;
    if (this.opts.signal?.aborted) throw new KovaError('ABORTED', 'restore was cancelled', { status: 409 });
  }

  /** failed records the first failure, so that concurrent work stops starting new files. */
  private failed<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => {
      this.failure ??= { err };
      this.decoder?.stopFiles();
      throw err;
    });
  }

  private async restoreDir(dirFd: number, treeId: string, rel: readonly Buffer[], selection: Selection): Promise<void> {
    this.checkAbort();
    const all = await this.src.readTree(treeId).catch((err: unknown) => {
      throw this.named(err, `directory /${this.display(rel)}`);
    });
    let nodes = all;
    if (selection) {
      nodes = all.filter((n) => selection.has(n.name.toString('latin1')));
      // Checked when the restore began (resolvePath): every chosen name is here.
      if (nodes.length !== selection.size) throw new PathNotFoundError(showPath(rel));
    }
    const partial = (n: TreeNode): boolean => selection?.get(n.name.toString('latin1')) != null;
    const small = nodes.filter((n) => n.type === 'file' && n.linkGroup === undefined && n.size <= SMALL_FILE && !partial(n));
    const others = small.length === 0 ? nodes : nodes.filter((n) => !small.includes(n));
    // Both halves run to the end (as WorkBudget.forEach does) before the first failure is thrown.
    const [a, b] = await Promise.allSettled([
      this.failed(this.restoreSmallFiles(dirFd, small, rel)),
      this.failed(this.restoreEntries(dirFd, others, rel, selection)),
    ]);
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
  }

  /**
   * restoreSmallFiles restores small files in batches: a batch takes budget
   * for all its chunks, creates all its files, then places all their chunks
   * at once (so they are read as one sorted batch). While a batch is being
   * written the next one is created; at most two are in flight, and the
   * first failure stops new batches once both have settled.
   */
  private async restoreSmallFiles(dirFd: number, files: readonly TreeNode[], rel: readonly Buffer[]): Promise<void> {
    const batches: TreeNode[][] = [];
    let bytes = Infinity;
    for (const f of files) {
      if (bytes + f.size > BATCH_BYTES || batches[batches.length - 1]!.length >= BATCH_FILES) {
        batches.push([]);
        bytes = 0;
      }
      batches[batches.length - 1]!.push(f);
      bytes += f.size;
    }
    const chunks = this.chunks!;
    let failure: { err: unknown } | null = null;
    const settle = async (p: Promise<void>): Promise<void> => {
      try {
        await p;
      } catch (err) {
        failure ??= { err };
      }
    };
    const inFlight: Promise<void>[] = [];
    for (const batch of batches) {
      try {
        this.checkAbort();
      } catch (err) {
        failure ??= { err };
      }
      if (failure) break;
      const res = await chunks.reserve(batch.flatMap(chunkIds));
      // Files with extended attributes are finished here (their refusals are reported per attribute).
      const whole = batch.some((n) => n.xattrs?.length) ? null : (this.fetcher?.writeFiles(dirFd, batch, IS_ROOT) ?? null);
      if (whole) {
        inFlight.push(this.wholeFiles(whole, batch, rel).finally(() => res.release()));
      } else {
        // Budget first, then descriptors, in every batch: no batch waits for one while holding what another waits for.
        await this.smallOpen.acquire(batch.length);
        inFlight.push(
          this.writeBatch(dirFd, batch, rel, res).finally(() => {
            res.release();
            this.smallOpen.release(batch.length);
          }),
        );
      }
      if (inFlight.length > 1) await settle(inFlight.shift()!);
    }
    for (const p of inFlight) await settle(p);
    if (failure) throw (failure as { err: unknown }).err;
  }

  /** wholeFiles counts the files a thread wrote whole, and throws the first failure among them. */
  private async wholeFiles(job: Promise<FileWritten[]>, batch: readonly TreeNode[], rel: readonly Buffer[]): Promise<void> {
    const results = await job;
    let failure: { err: unknown } | null = null;
    results.forEach((r, i) => {
      const node = batch[i]!;
      if (r === null) {
        this.files++;
        this.trimmer.fileDone(node.size);
        this.progress.bytes(node.size);
        this.progress.file();
      } else if (r !== 'withdrawn') {
        failure ??= { err: this.named(r, `file ${this.display([...rel, node.name])}`) };
      }
    });
    if (failure) throw (failure as { err: unknown }).err;
    if (results.includes('withdrawn')) {
      this.checkAbort();
      throw new Error('files of the restore were withdrawn');
    }
  }

  /** writeBatch creates a batch's files, places all their chunks at once, and finishes each file. */
  private async writeBatch(dirFd: number, batch: readonly TreeNode[], rel: readonly Buffer[], res: Reservation): Promise<void> {
    const opened = await Promise.allSettled(
      batch.map(async (node) => {
        this.checkAbort();
        return fsx.open(fsx.at(dirFd, node.name), fsx.OPEN_CREATE, 0o600);
      }),
    );
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) {
      for (const o of opened) if (o.status === 'fulfilled') await fsx.close(o.value);
      throw failed.reason;
    }
    // finishFile places every chunk before its first await: all of them land in one batch of reads.
    const done = await Promise.allSettled(
      batch.map((node, i) => this.finishFile((opened[i] as PromiseFulfilledResult<number>).value, node, [...rel, node.name], res)),
    );
    const bad = done.find((d) => d.status === 'rejected');
    if (bad) throw bad.reason;
  }

  private async restoreEntries(dirFd: number, nodes: readonly TreeNode[], rel: readonly Buffer[], selection: Selection): Promise<void> {
    await this.budget.forEach(nodes, async (node) => {
      const childRel = [...rel, node.name];
      const p = fsx.at(dirFd, node.name);
      const below = selection?.get(node.name.toString('latin1')) ?? null;
      // Checked when the restore began (resolvePath): a path continues only below directories.
      if (below !== null && node.type !== 'dir') throw new PathNotFoundError(showPath(childRel));
      switch (node.type) {
        case 'dir': {
          await fsx.mkdir(p, 0o700);
          const fd = await fsx.open(p, fsx.OPEN_DIR);
          try {
            await this.restoreDir(fd, node.subtree!, childRel, below);
            await this.applyMeta(fd, node, this.display(childRel));
          } finally {
            await fsx.close(fd);
          }
          this.dirs++;
          break;
        }
        case 'file':
          await this.restoreFile(dirFd, node, childRel);
          break;
        case 'symlink':
          await fsx.symlink(node.target!, p);
          await this.applyPathMeta(p, node, childRel, false);
          break;
        case 'fifo':
          native.mknod(p, fsx.S_IFIFO | 0o600, 0, 0);
          await this.applyPathMeta(p, node, childRel, true);
          break;
        case 'chardev':
        case 'blockdev':
          if (!IS_ROOT) {
            this.skipped.push({ path: this.display(childRel), reason: 'device nodes are restored only when running as root' });
            break;
          }
          native.mknod(p, (node.type === 'chardev' ? fsx.S_IFCHR : fsx.S_IFBLK) | 0o600, node.rdevMajor ?? 0, node.rdevMinor ?? 0);
          await this.applyPathMeta(p, node, childRel, true);
          break;
        case 'socket':
          this.skipped.push({ path: this.display(childRel), reason: 'sockets are not restored' });
          break;
      }
    });
  }

  /** restoreFile creates and writes one file (or links it to an earlier name of its inode). */
  private async restoreFile(dirFd: number, node: TreeNode, rel: readonly Buffer[]): Promise<void> {
    this.checkAbort();
    const p = fsx.at(dirFd, node.name);
    if (node.linkGroup !== undefined) {
      const first = this.links.get(node.linkGroup);
      if (first) {
        const source = await first;
        if (source) {
          try {
            await fsx.link(source, p);
            this.files++;
            this.progress.file(node.size);
            return;
          } catch (err) {
            if (!isErrno(err, 'ENAMETOOLONG', 'EMLINK', 'EXDEV')) throw err;
            // Fall through: restore this name as its own copy.
          }
        }
      }
    }
    let announce: ((p: Buffer | null) => void) | null = null;
    if (node.linkGroup !== undefined && !this.links.has(node.linkGroup)) {
      this.links.set(node.linkGroup, new Promise((resolve) => (announce = resolve)));
    }
    let fd: number;
    try {
      this.checkAbort();
      fd = await fsx.open(p, fsx.OPEN_CREATE, 0o600);
    } catch (err) {
      (announce as ((p: Buffer | null) => void) | null)?.(null);
      throw err;
    }
    // Later names of this inode link to this one, by a path below the target.
    if (announce) {
      try {
        (announce as (p: Buffer | null) => void)(await this.linkSource(dirFd, node.name, rel));
      } catch (err) {
        (announce as (p: Buffer | null) => void)(null);
        await fsx.close(fd);
        throw err;
      }
    }
    await this.finishFile(fd, node, rel);
  }

  /**
   * finishFile writes an open file's content, applies its metadata and
   * closes it. With a reservation (a batch of small files) every chunk is
   * placed before the first await.
   */
  private async finishFile(fd: number, node: TreeNode, rel: readonly Buffer[], res?: Reservation): Promise<void> {
    try {
      const big = res === undefined && node.size > 4 * 1024 * 1024;
      if (big) await this.bigFiles.acquire();
      try {
        await this.writeContent(fd, node, rel, res);
      } finally {
        if (big) this.bigFiles.release();
      }
      await this.applyMeta(fd, node, this.display(rel));
    } finally {
      closeSync(fd);
    }
    this.files++;
    this.trimmer.fileDone(node.size);
    this.progress.file();
  }

  /**
   * linkSource returns a path through which later names of a hardlinked
   * file reach it: relative to the target when short enough, else relative
   * to a descriptor of its directory kept open until the restore ends.
   */
  private async linkSource(dirFd: number, name: Buffer, rel: readonly Buffer[]): Promise<Buffer> {
    const relPath = Buffer.concat(rel.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from('/'), b])));
    if (relPath.length < LINK_PATH_MAX) return fsx.at(this.rootFd, relPath);
    // Our own directory, through /proc: following that link is the point.
    const fd = await fsx.open(fsx.at(dirFd), fsx.OPEN_DIR & ~fsConstants.O_NOFOLLOW);
    this.heldDirs.push(fd);
    return fsx.at(fd, name);
  }

  /**
   * writeContent places a file's chunks in order (all at once with a
   * reservation) and waits for each in order. Chunk i waits for budget only
   * when nothing of this file is placed past the written ones; the
   * look-ahead places in file order and only while the budget has room, so
   * this never waits for budget while holding some. It returns, also when
   * it throws, only once every write placed at `fd` has settled (after a
   * failure, those not yet handed to a worker are withdrawn).
   */
  private async writeContent(fd: number, node: TreeNode, rel: readonly Buffer[], res?: Reservation): Promise<void> {
    const chunks = this.chunks!;
    const content = node.content ?? [];
    const offsets: number[] = [];
    let end = 0;
    for (const c of content) {
      offsets.push(end);
      end += c.length;
    }
    // A file with holes gets its size before any write: no write then
    // extends it, and XFS, which preallocates past the end of a file being
    // extended, leaves no allocated blocks inside its holes.
    if (content.some((c) => c.id === null)) await fsx.ftruncate(fd, node.size);
    const placed: Array<Placement | undefined> = [];
    let next = 0; // first chunk not placed
    if (res) {
      content.forEach((c, i) => {
        if (c.id !== null) placed[i] = res.place(c.id, { fd, offset: offsets[i]! });
      });
      next = content.length;
    }
    let ahead = 0; // bytes placed past the current chunk
    const lookAhead = (i: number): void => {
      while (next < content.length && (next <= i + 1 || ahead < LOOKAHEAD_BYTES)) {
        const c = content[next]!;
        if (c.id !== null) {
          const r = chunks.tryReserve([c.id]);
          if (!r) return;
          placed[next] = r.place(c.id, { fd, offset: offsets[next]! });
          if (next > i) ahead += c.length;
        }
        next++;
      }
    };
    try {
      for (let i = 0; i < content.length; i++) {
        const c = content[i]!;
        if (c.id !== null) {
          if (next <= i) {
            placed[i] = (await chunks.reserve([c.id])).place(c.id, { fd, offset: offsets[i]! });
            next = i + 1;
          } else {
            ahead -= c.length;
          }
          lookAhead(i);
          try {
            await placed[i]!.done;
          } catch (err) {
            throw this.named(err, `file ${this.display(rel)}`);
          }
          placed[i]!.release();
          placed[i] = undefined;
        } else if (next <= i) {
          next = i + 1;
        }
        this.progress.bytes(c.length);
        this.checkAbort();
      }
    } finally {
      // After a failure: writes not handed to a worker yet are withdrawn, the
      // others waited for, since the caller closes fd next and no write may
      // land on a closed (maybe reused) descriptor.
      const out = placed.filter((p): p is Placement => p !== undefined);
      for (const p of out) p.cancel();
      await Promise.allSettled(out.map((p) => p.done));
      for (const p of out) p.release();
    }
  }

  /** named adds the snapshot and the entry to a corruption error's message. */
  private named(err: unknown, what: string): unknown {
    if (!(err instanceof CorruptionError)) return err;
    return new CorruptionError(
      `snapshot ${this.snapshot.id}: ${what}: ${err.message}`,
      { ...err.details, snapshot: this.snapshot.id, entry: what },
      err,
    );
  }

  /**
   * applyMeta sets owner, mode, xattrs and times on an open file or
   * directory. Synchronous: calls on a descriptor already open cost less
   * than the round trip through the thread pool (and xattrs and times were
   * set synchronously already).
   */
  private async applyMeta(fd: number, node: TreeNode, display: string): Promise<void> {
    if (IS_ROOT) fchownSync(fd, node.uid, node.gid);
    fchmodSync(fd, node.mode);
    for (const [k, v] of node.xattrs ?? []) {
      try {
        native.setXattr(fd, k, v);
      } catch (err) {
        if (!isErrno(err, 'EPERM', 'ENOTSUP', 'EACCES')) throw err;
        this.skipped.push({ path: display, reason: `extended attribute ${k.toString()} not restored (${(err as Error).message})` });
      }
    }
    setTimesNs(fd, node.mtimeNs, node.mtimeNs);
  }

  /** applyPathMeta does the same for a symlink or special file, by path. */
  private async applyPathMeta(p: Buffer, node: TreeNode, rel: readonly Buffer[], chmod: boolean): Promise<void> {
    if (IS_ROOT) await fsx.lchown(p, node.uid, node.gid);
    // The entry was just created by us and is not a symlink: chmod is safe.
    if (chmod) await fsx.chmod(p, node.mode);
    for (const [k, v] of node.xattrs ?? []) {
      try {
        native.setXattr(p, k, v);
      } catch (err) {
        if (!isErrno(err, 'EPERM', 'ENOTSUP', 'EACCES')) throw err;
        this.skipped.push({ path: this.display(rel), reason: `extended attribute ${k.toString()} not restored` });
      }
    }
    setTimesNs(p, node.mtimeNs, node.mtimeNs);
  }
}
