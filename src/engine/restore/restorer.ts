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
 * Pipeline: directories are walked with bounded parallelism (WorkBudget)
 * and files are written concurrently; their chunks come from a BlobFetcher
 * (blob-fetcher.ts), which reads the chunks wanted at the same time as
 * sorted, merged pack ranges and decompresses and verifies them on worker
 * threads (decode-pool.ts) within a byte budget. A file takes its chunks in
 * order: it waits for budget only when it holds none, and looks ahead (up to
 * LOOKAHEAD_BYTES) only when the budget has room, so waiting files never
 * hold what others need.
 *
 * Fidelity: holes stay holes (only data chunks are written, the length is
 * set with ftruncate), hardlinks are restored as links, owners when running
 * as root, then modes (after chown, which clears setuid bits), extended
 * attributes and exact timestamps, directories' after their children.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
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
import { checkSpace, restoreFootprint } from './space.js';
import { PathNotFoundError, resolvePath, showPath } from '../browse/browse.js';
import type { BlobLocation } from '../format/blob.js';
import type { BlobCodec } from '../repo/codec.js';
import { BlobFetcher, type FetchOptions, type Lease } from './blob-fetcher.js';
import { DecodePool, type DecodePoolOptions } from './decode-pool.js';

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
  readonly storage: { readAt(name: string, offset: number, length: number): Promise<Buffer> };
  loadIndex(): Promise<{ get(id: string): BlobLocation | undefined }>;
}

function isPacked(src: BlobSource): src is PackedBlobSource {
  const s = src as Partial<PackedBlobSource>;
  return typeof s.loadIndex === 'function' && typeof s.storage?.readAt === 'function' && s.codec !== undefined;
}

/** The chunks a file asks for: a BlobFetcher, or blob by blob from a plain source. */
interface ChunkSource {
  get(id: string): Promise<Lease>;
  tryGet(id: string): Lease | null;
  getMany(ids: readonly string[]): Promise<Lease[]>;
  tryGetMany(ids: readonly string[]): Lease[] | null;
}

function directSource(src: BlobSource): ChunkSource {
  const lease = (id: string): Lease => {
    const data = src.readBlob(id);
    data.catch(() => undefined); // handled when awaited
    return { data, release: () => undefined };
  };
  return { get: async (id) => lease(id), tryGet: lease, getMany: async (ids) => ids.map(lease), tryGetMany: (ids) => ids.map(lease) };
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

/** The chunk ids of a file, in order. */
const chunkIds = (node: TreeNode): string[] => (node.content ?? []).flatMap((c) => (c.id === null ? [] : [c.id]));

/** Bytes of its next chunks a file asks for while it writes the current one. */
const LOOKAHEAD_BYTES = 8 * 1024 * 1024;
/** Hardlink sources with longer paths below the target are reached through a held directory. */
const LINK_PATH_MAX = 3000;
const IS_ROOT = process.getuid?.() === 0;

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
    if (this.opts.checkSpace !== false) {
      let needed = 0;
      // Chosen entries, one inside another counted twice at worst: a conservative need.
      for (const node of chosen)
        needed += await restoreFootprint(this.src, node, (err, dir) => this.named(err, `directory /${this.display(dir)}`));
      await checkSpace('restore', abs, needed);
    }
    await prepareTarget(abs);
    if (isPacked(this.src)) {
      const index = await this.src.loadIndex();
      const storage = this.src.storage;
      this.decoder = new DecodePool(this.src.codec, this.opts.pipeline);
      this.fetcher = new BlobFetcher(
        { locate: (id) => index.get(id), readAt: (name, offset, length) => storage.readAt(name, offset, length) },
        this.decoder,
        this.opts.pipeline,
      );
      this.chunks = this.fetcher;
    } else {
      this.chunks = directSource(this.src);
    }
    this.rootFd = await fsx.open(abs, fsx.OPEN_DIR);
    try {
      await this.restoreDir(this.rootFd, root.subtree!, [], selection);
      await this.applyMeta(this.rootFd, root, abs);
      if (this.opts.sync) await syncfs(this.rootFd);
    } catch (err) {
      throw await asDiskFull(err, 'restore target', abs);
    } finally {
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
   * restoreSmallFiles restores small files in batches: a batch's chunks are
   * leased together (one read per pack range), then its files are written
   * concurrently; the next batch's chunks are requested meanwhile when the
   * budget has room (never waited for while this batch's leases are held).
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
    const ids = (batch: readonly TreeNode[]): string[] => batch.flatMap(chunkIds);
    const chunks = this.chunks!;
    let next: Lease[] | null = batches.length > 0 ? await chunks.getMany(ids(batches[0]!)) : null;
    for (let k = 0; k < batches.length; k++) {
      const leases = next ?? (await chunks.getMany(ids(batches[k]!)));
      next = k + 1 < batches.length ? chunks.tryGetMany(ids(batches[k + 1]!)) : null;
      try {
        this.checkAbort();
        let at = 0;
        const given = batches[k]!.map((f) => {
          const n = chunkIds(f).length;
          at += n;
          return leases.slice(at - n, at);
        });
        await this.budget.forEach(batches[k]!, (node, i) => this.restoreFile(dirFd, node, [...rel, node.name], given[i]));
      } catch (err) {
        for (const l of next ?? []) l.release();
        throw err;
      } finally {
        for (const l of leases) l.release();
      }
    }
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

  /** restoreFile creates and writes one file; `given` are leases of all its chunks, if already taken. */
  private async restoreFile(dirFd: number, node: TreeNode, rel: readonly Buffer[], given?: Lease[]): Promise<void> {
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
    if (announce) (announce as (p: Buffer | null) => void)(await this.linkSource(dirFd, node.name, rel));
    try {
      const big = node.size > 4 * 1024 * 1024;
      if (big) await this.bigFiles.acquire();
      try {
        await this.writeContent(fd, node, rel, given);
      } finally {
        if (big) this.bigFiles.release();
      }
      await this.applyMeta(fd, node, this.display(rel));
    } finally {
      await fsx.close(fd);
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
   * writeContent writes a file's chunks in order. Chunk i is awaited only
   * once its lease is held; the look-ahead takes leases in file order and
   * only while the budget has room, so this never waits for budget while
   * holding a lease.
   */
  private async writeContent(fd: number, node: TreeNode, rel: readonly Buffer[], given?: Lease[]): Promise<void> {
    const chunks = this.chunks!;
    const content = node.content ?? [];
    const held: Array<Lease | undefined> = [];
    let next = 0; // first chunk without a lease
    if (given) {
      let g = 0;
      content.forEach((c, i) => {
        if (c.id !== null) held[i] = given[g++];
      });
      next = content.length;
    }
    let ahead = 0; // bytes of leases held past the current chunk
    const lookAhead = (i: number): void => {
      while (next < content.length && (next <= i + 1 || ahead < LOOKAHEAD_BYTES)) {
        const c = content[next]!;
        if (c.id !== null) {
          const lease = chunks.tryGet(c.id);
          if (!lease) return;
          held[next] = lease;
          if (next > i) ahead += c.length;
        }
        next++;
      }
    };
    try {
      let offset = 0;
      for (let i = 0; i < content.length; i++) {
        const c = content[i]!;
        if (c.id !== null) {
          if (next <= i) {
            held[i] = await chunks.get(c.id);
            next = i + 1;
          } else {
            ahead -= c.length;
          }
          lookAhead(i);
          let data: Buffer;
          try {
            data = await held[i]!.data;
          } catch (err) {
            throw this.named(err, `file ${this.display(rel)}`);
          }
          await fsx.writeFull(fd, data, offset);
          held[i]!.release();
          held[i] = undefined;
        } else if (next <= i) {
          next = i + 1;
        }
        offset += c.length;
        this.progress.bytes(c.length);
        this.checkAbort();
      }
    } finally {
      for (const lease of held) lease?.release();
    }
    const last = content[content.length - 1];
    if (last && last.id === null) await fsx.ftruncate(fd, node.size);
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

  /** applyMeta sets owner, mode, xattrs and times on an open file or directory. */
  private async applyMeta(fd: number, node: TreeNode, display: string): Promise<void> {
    if (IS_ROOT) await fsx.fchown(fd, node.uid, node.gid);
    await fsx.fchmod(fd, node.mode);
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
