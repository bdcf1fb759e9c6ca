/**
 * session: a snapshot in the making. A session holds the repository's write
 * lock from begin() to commit() or abort(), so captures can be repeated
 * against each other (the service's two-pass capture: a live pass, then a
 * short pass while the containers are frozen) before one result becomes a
 * snapshot.
 *
 * Crash safety, in order: packs are written and made durable; then index
 * files list them (one per `indexBlobs` blobs, written as packs are done, the
 * last at commit); then the snapshot record is written. Until the record
 * exists nothing refers to the new data, so a crash at any point leaves every
 * earlier snapshot as it was; gc reclaims the leftovers.
 *
 * Memory: the session keeps the ids of its packs and about `indexBlobs`
 * blob entries not yet in an index file, so a snapshot that adds millions
 * of blobs holds no per-blob list besides the master index (master-index.ts).
 *
 * Failure: a capture or commit that fails rejects with one error (the first
 * failed write when a write failed; ENOSPC becomes DiskFullError). A session
 * that ends without a snapshot record (failed, or aborted) removes what it
 * wrote, index files first, then its packs, so the repository is as before.
 */
import os from 'node:os';
import path from 'node:path';
import type { BlobType } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { encodeIndex, type IndexedPack } from '../format/index-format.js';
import { type SnapshotRecord, type SnapshotStats, encodeSnapshotRecord, decodeSnapshotRecord } from '../format/snapshot-record.js';
import { type TreeNode, decodeTree, encodeTree } from '../format/tree.js';
import type { RepoLock } from '../repo/lock.js';
import type { MasterIndex } from '../repo/master-index.js';
import { CompressPool } from '../repo/compress-pool.js';
import { PackWriter } from '../repo/pack-writer.js';
import type { SessionRepo } from '../repo/access.js';
import { packName } from '../repo/master-index.js';
import { asDiskFull } from '../util/disk-space.js';
import { isErrno } from '../../core/errors.js';
import { type ArchiveOptions, Archiver, type Source } from './archiver.js';
import type { SkippedEntry } from '../format/snapshot-record.js';

/**
 * Bytes of encoded trees a session keeps in memory for its next capture
 * (about 200 bytes per entry encoded against about 1 KB decoded: some
 * 80,000 entries); trees past it are read again from the repository, like
 * a parent snapshot's.
 */
const SESSION_TREE_BYTES = 16 * 1024 * 1024;
/** Blob entries an index file of a session lists at most (48 bytes each in the file). */
const INDEX_BLOBS = 100_000;

export interface SessionOptions {
  /** Blobs listed per index file (the session holds at most this many entries unindexed). Default INDEX_BLOBS. */
  readonly indexBlobs?: number;
  /** Bytes of encoded trees kept for the next capture. Default SESSION_TREE_BYTES. */
  readonly treeBytes?: number;
}

/** The result of one capture: a snapshot that is not (yet) recorded. */
export interface Draft {
  readonly root: TreeNode;
  readonly scanStartNs: bigint;
  readonly sources: readonly string[];
  readonly stats: SnapshotStats;
  readonly skipped: readonly SkippedEntry[];
}

export interface CommitOptions {
  readonly label?: string | null;
  readonly tags?: readonly string[];
  /** The recorded parent (the snapshot the first capture compared against). */
  readonly parent?: string | null;
  /** Creation time; default now. */
  readonly time?: Date;
}

export interface CaptureOptions extends Omit<ArchiveOptions, 'parent'> {
  /** A committed snapshot or a draft of this session to compare against. */
  readonly parent?: SnapshotRecord | Draft | null;
}

export class SnapshotSession {
  private readonly pending = new Set<string>();
  /** Ids of the packs this session wrote, for removal if it ends without a record. */
  private readonly packIds: string[] = [];
  /** Packs written (durable) and not listed in an index file yet, and their blob count. */
  private unindexed: IndexedPack[] = [];
  private unindexedBlobs = 0;
  /** The index file being written, if any (one at a time). */
  private indexWrite: Promise<void> | null = null;
  private readonly writer: PackWriter;
  private readonly compressor: CompressPool;
  /**
   * The listings this session stored, by tree id, encoded, for the next
   * capture's comparison: the service's second pass (under freeze) then
   * reads no tree from disk. Kept encoded (a fifth of their decoded size)
   * and bounded by `treeBudget` bytes; decoded again when used.
   */
  private readonly trees = new Map<string, Buffer>();
  private treeBytes = 0;
  private treesFull = false;
  private newBlobs = 0;
  private newBytes = 0;
  private storedBytes = 0;
  private closed = false;
  /** The index files this session wrote, until the snapshot record is written. */
  private readonly indexNames: string[] = [];
  private committed = false;

  private constructor(
    private readonly repo: SessionRepo,
    private readonly lock: RepoLock,
    private readonly index: MasterIndex,
    private readonly indexBlobs: number,
    private readonly treeBudget: number,
  ) {
    this.writer = new PackWriter(repo.storage, repo.config.packSize, (pack) => {
      this.index.add(pack);
      this.packIds.push(pack.id);
      this.unindexed.push(pack);
      this.unindexedBlobs += pack.blobs.length;
      for (const b of pack.blobs) this.pending.delete(b.id);
    });
    this.compressor = new CompressPool(repo.codec, repo.config.compressionLevel);
  }

  /** begin takes the write lock, removes leftovers of crashed writers and loads the index. */
  static async begin(repo: SessionRepo, operation = 'snapshot', opts: SessionOptions = {}): Promise<SnapshotSession> {
    let lock: RepoLock;
    try {
      lock = await repo.lock('write', operation);
    } catch (err) {
      throw await asDiskFull(err, 'repository', repo.location);
    }
    try {
      await repo.storage.cleanTemp();
      const index = await repo.reloadIndex();
      return new SnapshotSession(
        repo,
        lock,
        index,
        Math.max(1, opts.indexBlobs ?? INDEX_BLOBS),
        Math.max(0, opts.treeBytes ?? SESSION_TREE_BYTES),
      );
    } catch (err) {
      await lock.release();
      throw await asDiskFull(err, 'repository', repo.location);
    }
  }

  private hasBlob = (id: string): boolean => this.index.has(id) || this.pending.has(id);

  /** saveBlob stores a blob unless it is already stored, and returns its id
   * (computed here unless the caller hashed it already). */
  private saveBlob = async (type: BlobType, raw: Buffer, knownId?: string): Promise<string> => {
    const id = knownId ?? hashHex(raw);
    if (this.hasBlob(id)) return id;
    this.pending.add(id);
    const { stored, compression, release } = await this.compressor.encode(raw);
    this.newBlobs++;
    this.newBytes += raw.length;
    this.storedBytes += stored.length;
    // add() copies `stored` before it first waits.
    const added = this.writer.add(type, id, stored, compression, raw.length);
    release?.();
    await added;
    if (this.unindexedBlobs >= this.indexBlobs) await this.writeIndex();
    return id;
  };

  /**
   * writeIndex lists the packs written so far and not yet indexed in new
   * index files of about `indexBlobs` blobs each (their blobs are in the
   * master index already); `all` lists the rest too. One index file is
   * written at a time; a caller arriving meanwhile waits for it. Many blobs
   * stored at once (a batch of small files) can leave several files' worth
   * unindexed: they are split, so no index file grows past the limit by
   * more than one pack.
   */
  private async writeIndex(all = false): Promise<void> {
    for (;;) {
      while (this.indexWrite) await this.indexWrite;
      if (this.unindexed.length === 0 || (!all && this.unindexedBlobs < this.indexBlobs)) return;
      let take = 0;
      let blobs = 0;
      while (take < this.unindexed.length && blobs < this.indexBlobs) blobs += this.unindexed[take++]!.blobs.length;
      const packs = this.unindexed.splice(0, take);
      this.unindexedBlobs -= blobs;
      const write = async (): Promise<void> => {
        const idx = encodeIndex(packs);
        const name = `index/${hashHex(idx)}`;
        // Listed before the write: a file that may exist is removed on failure.
        this.indexNames.push(name);
        await this.repo.storage.write(name, idx);
      };
      const written = write().finally(() => {
        this.indexWrite = null;
      });
      this.indexWrite = written;
      await written;
    }
  }

  /**
   * capture snapshots `source` (a directory, or named directories that become
   * children of a synthetic root) into a draft. The draft's data is durable
   * when capture returns, so it can serve as the parent of the next capture.
   */
  async capture(source: string | readonly Source[], opts: CaptureOptions = {}): Promise<Draft> {
    this.assertOpen();
    const started = Date.now();
    const before = { blobs: this.newBlobs, bytes: this.newBytes, stored: this.storedBytes };
    const sources: Source[] =
      typeof source === 'string' ? [{ name: null, path: path.resolve(source) }] : source.map((s) => ({ ...s, path: path.resolve(s.path) }));
    const archiver = new Archiver(
      {
        gear: this.repo.gear,
        readTree: (id) => {
          const t = this.trees.get(id);
          // A capture reads each listing once: caching them would only hold decoded entries.
          return t ? Promise.resolve(decodeTree(t, `tree ${id}`)) : this.repo.readTree(id, { cache: false });
        },
        hasBlob: this.hasBlob,
        saveBlob: this.saveBlob,
        treeSaved: (id, nodes, encoded) => {
          // Once full, nothing more is encoded (a reused parent listing comes
          // without its bytes); with no budget (one capture), nothing at all.
          if (this.treeBudget === 0 || this.treesFull || this.trees.has(id)) return;
          const bytes = encoded ?? encodeTree(nodes);
          if (this.treeBytes + bytes.length > this.treeBudget) {
            this.treesFull = true;
            return;
          }
          this.trees.set(id, bytes);
          this.treeBytes += bytes.length;
        },
      },
      { ...opts, parent: opts.parent ? { root: opts.parent.root, scanStartNs: opts.parent.scanStartNs } : null },
    );
    let result;
    try {
      result = await archiver.run(sources);
      await this.writer.flush();
    } catch (err) {
      throw await this.failure(err);
    }
    return {
      root: result.root,
      scanStartNs: result.scanStartNs,
      sources: sources.map((s) => s.path),
      skipped: result.skipped,
      stats: {
        ...result.stats,
        newBlobs: this.newBlobs - before.blobs,
        newBytes: this.newBytes - before.bytes,
        storedBytes: this.storedBytes - before.stored,
        durationMs: Date.now() - started,
      },
    };
  }

  /**
   * commit records `draft` as a snapshot: writes the index of every pack this
   * session wrote, then the snapshot record, and releases the lock. Stats of
   * new data count everything this session stored (all its captures).
   */
  async commit(draft: Draft, opts: CommitOptions = {}): Promise<SnapshotRecord> {
    this.assertOpen();
    try {
      await this.writer.flush();
      await this.writeIndex(true);
      const { id, bytes } = encodeSnapshotRecord({
        time: (opts.time ?? new Date()).toISOString(),
        label: opts.label ?? null,
        tags: [...(opts.tags ?? [])],
        parent: opts.parent ?? null,
        hostname: os.hostname(),
        sources: draft.sources,
        root: draft.root,
        scanStartNs: draft.scanStartNs,
        stats: { ...draft.stats, newBlobs: this.newBlobs, newBytes: this.newBytes, storedBytes: this.storedBytes },
        skippedEntries: draft.skipped,
      });
      await this.repo.storage.write(`snapshots/${id}`, bytes);
      this.committed = true;
      return decodeSnapshotRecord(id, bytes);
    } catch (err) {
      throw await this.failure(err);
    } finally {
      await this.abort();
    }
  }

  /**
   * abort gives up (after commit it only releases what the session holds):
   * it waits for the writes in flight, removes the index file and packs this
   * session wrote, and releases the lock. Nothing refers to them: the
   * session held the write lock and no snapshot record lists them.
   */
  async abort(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.committed) await this.removeWritten();
    } finally {
      await this.close();
    }
  }

  /**
   * failure is the one error a failed capture or commit reports: the first
   * failed write if a write failed (other errors then are its consequences),
   * with "no space" as a DiskFullError.
   */
  private async failure(err: unknown): Promise<unknown> {
    return asDiskFull(this.writer.failed ?? err, 'repository', this.repo.location);
  }

  private async removeWritten(): Promise<void> {
    await this.writer.discard();
    while (this.indexWrite) await this.indexWrite.catch(() => undefined);
    if (this.packIds.length === 0 && this.indexNames.length === 0) return;
    // The repository's cached index lists the packs about to go.
    this.repo.forgetIndex();
    for (const name of this.indexNames.splice(0)) {
      try {
        await this.repo.storage.remove(name);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        return; // an index may still list the packs: they stay, for gc to judge
      }
    }
    this.unindexed = [];
    for (const id of this.packIds.splice(0)) await this.repo.storage.remove(packName(id)).catch(() => undefined);
  }

  private async close(): Promise<void> {
    this.closed = true;
    await this.compressor.close();
    await this.lock.release();
  }

  /** Bytes of encoded trees held for the next capture (at most the `treeBytes` option). */
  get cachedTreeBytes(): number {
    return this.treeBytes;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('snapshot session is closed');
  }
}
