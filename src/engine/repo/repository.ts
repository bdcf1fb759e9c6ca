/**
 * repository: an open Kova repository: its config, its index, and reading of
 * blobs, trees and snapshot records. Writing happens through a
 * SnapshotSession (snapshot/session.ts) or gc; each operation takes the lock
 * it needs (repo/lock.ts).
 *
 * Every blob read is checked against its id (BLAKE3) before it is returned,
 * so nothing downstream ever sees data that differs from what was stored.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AmbiguousIdError,
  CorruptionError,
  InvalidInputError,
  RepoNotFoundError,
  SnapshotNotFoundError,
  isErrno,
} from '../../core/errors.js';
import { type GearConfig, resolveGear } from '../chunker/gear.js';
import { BlobType } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { rawIndexPacks } from '../format/index-format.js';
import { type SnapshotRecord, decodeSnapshotRecord } from '../format/snapshot-record.js';
import { type TreeNode, decodeTree } from '../format/tree.js';
import { fsyncDir } from '../fsx/durable.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import type { BrokenSnapshot, GcRepo, IndexProblem, SessionRepo, VerifyRepo } from './access.js';
import { BlobCodec } from './codec.js';
import { CONFIG_NAME, type InitOptions, type RepoConfig, newConfig, parseConfig } from './config.js';
import { type LockKind, type RepoLock, acquireLock } from './lock.js';
import { MasterIndex, packName } from './master-index.js';
import { type CaptureOptions, type CommitOptions, type SessionOptions, SnapshotSession } from '../snapshot/session.js';
import type { Source } from '../snapshot/archiver.js';
import { type RestoreOptions, type RestoreResult, Restorer } from '../restore/restorer.js';
import { type GcOptions, type GcReport, collectGarbage } from '../gc/gc.js';
import { affectedSnapshots } from '../verify/affected.js';
import { type Finding, type VerifyOptions, type VerifyReport, verifyRepository } from '../verify/verify.js';

export interface SnapshotOptions extends Omit<CaptureOptions, 'parent'>, Omit<CommitOptions, 'parent'> {
  /** Id (or unique prefix) of the snapshot to compare against; null for a full read. */
  readonly parent?: string | null;
}

export interface RepoStats {
  readonly snapshots: number;
  readonly packs: number;
  /** Bytes of all pack files: the repository's data on disk. */
  readonly packBytes: number;
  readonly blobs: number;
  /** Uncompressed bytes of all distinct blobs. */
  readonly rawBytes: number;
  /** Sum of the logical sizes of all snapshots (what a plain copy of each would take). */
  readonly logicalBytes: number;
}

export interface OpenOptions {
  /** How long to wait for a conflicting lock. Default 0: fail at once. */
  readonly lockTimeoutMs?: number;
  /** Index records held in memory before they are spilled to a file (MasterIndex; default 2^20). */
  readonly indexMemoryRecords?: number;
}

export type { BrokenSnapshot, IndexProblem } from './access.js';

/**
 * Decoded directory entries the tree cache holds at most (about 1 KB each
 * decoded: 16 MB), whatever the trees' sizes; a larger tree is not kept.
 * Counted in entries, not trees: 256 trees of a volume with big directories
 * held a quarter of a million entries.
 */
const TREE_CACHE_NODES = 16_384;

export class Repository implements SessionRepo, GcRepo, VerifyRepo {
  readonly codec: BlobCodec;
  readonly gear: GearConfig;
  private index: MasterIndex | null = null;
  private indexProblems: IndexProblem[] = [];
  private readonly treeCache = new Map<string, TreeNode[]>();
  private treeCacheNodes = 0;

  private constructor(
    readonly storage: Storage,
    readonly config: RepoConfig,
    readonly options: OpenOptions,
  ) {
    this.codec = new BlobCodec(config.compressionLevel);
    this.gear = resolveGear(config.chunker);
  }

  /** init creates a repository in `dir`, which must be absent or empty. */
  static async init(dir: string, opts: InitOptions = {}): Promise<Repository> {
    const abs = path.resolve(dir);
    try {
      const names = await fs.readdir(abs);
      if (names.length > 0) throw new InvalidInputError(`${abs} is not empty; a repository needs an empty or absent directory`);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await fs.mkdir(abs, { recursive: true });
      await fsyncDir(path.dirname(abs));
    }
    const storage = new LocalStorage(abs);
    return Repository.create(storage, opts);
  }

  /** create writes a new repository into an empty storage. */
  static async create(storage: Storage, opts: InitOptions = {}): Promise<Repository> {
    const config = newConfig(opts);
    // The config is written last: a half-initialised directory is not a repository.
    await storage.write('snapshots/.keep', Buffer.alloc(0));
    await storage.write('index/.keep', Buffer.alloc(0));
    await storage.write('locks/.keep', Buffer.alloc(0));
    await storage.write(CONFIG_NAME, Buffer.from(JSON.stringify(config, null, 2)));
    return new Repository(storage, config, {});
  }

  /** open opens an existing repository in `dir`. */
  static async open(dir: string, opts: OpenOptions = {}): Promise<Repository> {
    return Repository.openStorage(new LocalStorage(path.resolve(dir)), opts);
  }

  static async openStorage(storage: Storage, opts: OpenOptions = {}): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await storage.read(CONFIG_NAME);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new RepoNotFoundError(storage.location);
      throw err;
    }
    return new Repository(storage, parseConfig(raw), opts);
  }

  get location(): string {
    return this.storage.location;
  }

  /**
   * close closes the storage's handles. The index stays loaded (a kept
   * repository is reopened by its next reader without reading it again);
   * its spilled runs' files are closed when it is dropped.
   */
  async close(): Promise<void> {
    await this.storage.close();
  }

  /** lock takes a repository lock (see repo/lock.ts for the kinds). */
  lock(kind: LockKind, operation: string): Promise<RepoLock> {
    return acquireLock(this.storage, kind, { operation, timeoutMs: this.options.lockTimeoutMs ?? 0 });
  }

  /* ---- index ----------------------------------------------------------------- */

  /** The index files the cached index was read from (sorted), null when none is cached. */
  private indexNames: string[] | null = null;

  /** loadIndex reads every index file (once; later calls return the cache). */
  async loadIndex(): Promise<MasterIndex> {
    if (this.index) return this.index;
    const names = await this.indexFiles();
    const index = new MasterIndex({ spillDir: this.spillDir(), memoryRecords: this.options.indexMemoryRecords });
    this.indexProblems = await this.readIndexFiles(names, index);
    this.index = index;
    this.indexNames = names;
    return index;
  }

  /**
   * spillDir is where the index spills records it cannot hold in memory:
   * the repository's own tmp directory when it is local (the volume the
   * repository was sized for, not a tmpfs), else the system's.
   */
  private spillDir(): string {
    return this.storage instanceof LocalStorage ? path.join(this.storage.location, 'tmp') : os.tmpdir();
  }

  /** readIndexFiles adds the index files `names` to `index` and returns those it could not use. */
  private async readIndexFiles(names: readonly string[], index: MasterIndex): Promise<IndexProblem[]> {
    const problems: IndexProblem[] = [];
    for (const name of names) {
      try {
        const buf = await this.storage.read(name);
        const id = name.slice('index/'.length);
        if (hashHex(buf) !== id) throw new CorruptionError(`${name}: index file checksum mismatch (truncated or damaged)`);
        for (const p of rawIndexPacks(buf, name)) index.addRaw(p);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        problems.push({ file: name, message: err instanceof Error ? err.message : String(err) });
      }
    }
    return problems;
  }

  /**
   * refreshIndex brings the cached index up to date with the index files
   * there are now, for a repository kept open across operations (browsing).
   * Index files are named by their content and never change, so the same
   * names mean the same index: it is kept as it is. When files were only
   * added (a snapshot committed), just those are read into it. When any
   * file it was read from is gone (gc replaced the index, or a failed
   * snapshot removed its own), it is read again whole, since packs it
   * points to may be gone too. Call it under a lock that keeps gc out (a
   * read lock), so the index stays valid while that lock is held. Tells
   * whether the index changed (false also when none was loaded yet: it is
   * loaded now).
   */
  async refreshIndex(): Promise<boolean> {
    if (!this.index || !this.indexNames) {
      await this.loadIndex();
      return false;
    }
    const names = await this.indexFiles();
    const loaded = new Set(this.indexNames);
    if (names.length === loaded.size && names.every((n) => loaded.has(n))) return false;
    const present = new Set(names);
    if (!this.indexNames.every((n) => present.has(n))) {
      await this.reloadIndex();
      return true;
    }
    const added = names.filter((n) => !loaded.has(n));
    this.indexProblems = [...this.indexProblems, ...(await this.readIndexFiles(added, this.index))];
    this.indexNames = names;
    return true;
  }

  /** reloadIndex drops the cached index and reads it again. */
  async reloadIndex(): Promise<MasterIndex> {
    this.forgetIndex();
    return this.loadIndex();
  }

  /** forgetIndex drops the cached index: the next use reads it again (after packs were removed). */
  forgetIndex(): void {
    this.index = null;
    this.indexNames = null;
    this.treeCache.clear();
    this.treeCacheNodes = 0;
  }

  /**
   * unloadIndex drops the cached index and closes its spilled runs' files at
   * once, giving back their disk space. Only for a repository nothing uses
   * any more: a read in progress would find the runs closed.
   */
  unloadIndex(): void {
    const index = this.index;
    this.forgetIndex();
    index?.close();
  }

  /** Directory entries held decoded by the tree cache (at most TREE_CACHE_NODES). */
  get cachedTreeNodes(): number {
    return this.treeCacheNodes;
  }

  /** Bytes the cached index takes (0 when none is loaded). */
  get indexBytes(): number {
    return this.index?.allocatedBytes ?? 0;
  }

  /** Index files that could not be read at the last load. */
  get loadProblems(): readonly IndexProblem[] {
    return this.indexProblems;
  }

  async indexFiles(): Promise<string[]> {
    return (await this.storage.list('index')).filter((n) => !n.endsWith('/.keep'));
  }

  async packFiles(): Promise<string[]> {
    return this.storage.list('packs');
  }

  /* ---- blobs and trees ----------------------------------------------------------- */

  /**
   * readBlob returns a blob's raw bytes after checking them against `id`.
   * Throws CorruptionError when the blob is not indexed, its pack is missing
   * or short, or the bytes don't match.
   */
  async readBlob(id: string): Promise<Buffer> {
    const index = await this.loadIndex();
    const loc = index.get(id);
    if (!loc) throw new CorruptionError(`blob ${id} is not in the index`, { blob: id });
    let stored: Buffer;
    try {
      stored = await this.storage.readAt(packName(loc.pack), loc.offset, loc.length);
    } catch (err) {
      if (isErrno(err, 'ENOENT'))
        throw new CorruptionError(`pack ${loc.pack} holding blob ${id} is missing`, { blob: id, pack: loc.pack }, err);
      throw err;
    }
    const raw = this.codec.decode(stored, loc.compression, loc.rawLength, `blob ${id}`);
    if (hashHex(raw) !== id) {
      throw new CorruptionError(`blob ${id} in pack ${loc.pack} does not match its hash`, { blob: id, pack: loc.pack });
    }
    return raw;
  }

  /**
   * readTree returns a directory listing, validated (format/tree.ts). The
   * last ones read are kept decoded, up to TREE_CACHE_NODES entries in all
   * (oldest dropped first); `cache: false` neither looks there nor keeps
   * the result (for callers with a cache of their own).
   */
  async readTree(id: string, opts: { cache?: boolean } = {}): Promise<TreeNode[]> {
    const useCache = opts.cache ?? true;
    const cached = useCache ? this.treeCache.get(id) : undefined;
    if (cached) return cached;
    const index = await this.loadIndex();
    const loc = index.get(id);
    if (loc && loc.type !== BlobType.Tree) throw new CorruptionError(`blob ${id} is not a tree`, { blob: id });
    const nodes = decodeTree(await this.readBlob(id), `tree ${id}`);
    if (!useCache || nodes.length > TREE_CACHE_NODES || this.treeCache.has(id)) return nodes;
    this.treeCache.set(id, nodes);
    this.treeCacheNodes += nodes.length;
    for (const [old, oldNodes] of this.treeCache) {
      if (this.treeCacheNodes <= TREE_CACHE_NODES) break;
      this.treeCache.delete(old);
      this.treeCacheNodes -= oldNodes.length;
    }
    return nodes;
  }

  /* ---- operations ------------------------------------------------------------- */

  /** beginSnapshot starts a session (write lock) for captures and one commit. */
  beginSnapshot(operation = 'snapshot', opts: SessionOptions = {}): Promise<SnapshotSession> {
    return SnapshotSession.begin(this, operation, opts);
  }

  /**
   * snapshot captures `source` and records it: one capture, one commit. With
   * no second capture, the session keeps no trees for one.
   */
  async snapshot(source: string | readonly Source[], opts: SnapshotOptions = {}): Promise<SnapshotRecord> {
    const parent = opts.parent ? await this.findSnapshot(opts.parent) : null;
    const session = await this.beginSnapshot('snapshot', { treeBytes: 0 });
    try {
      const draft = await session.capture(source, { ...opts, parent });
      return await session.commit(draft, { ...opts, parent: parent?.id ?? null });
    } finally {
      await session.abort();
    }
  }

  /** restore writes a snapshot into `target` (absent or empty), under a read lock. */
  async restore(idOrRecord: string | SnapshotRecord, target: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
    const lock = await this.lock('read', 'restore');
    try {
      const record = typeof idOrRecord === 'string' ? await this.findSnapshot(idOrRecord) : idOrRecord;
      await this.loadIndex();
      return await new Restorer(this, record, opts).run(target);
    } finally {
      await lock.release();
    }
  }

  /** deleteSnapshot removes a snapshot's record; gc reclaims its data. */
  async deleteSnapshot(idOrPrefix: string): Promise<SnapshotRecord> {
    return (await this.deleteSnapshots([idOrPrefix]))[0]!;
  }

  /**
   * deleteSnapshots removes several snapshots' records under one write lock.
   * Every id is resolved first, so an unknown one deletes nothing. Returns
   * the deleted records, each once, in the order given.
   */
  async deleteSnapshots(idsOrPrefixes: readonly string[]): Promise<SnapshotRecord[]> {
    const lock = await this.lock('write', 'delete');
    try {
      const records = new Map<string, SnapshotRecord>();
      for (const id of idsOrPrefixes) {
        const record = await this.findSnapshot(id);
        records.set(record.id, record);
      }
      for (const id of records.keys()) await this.storage.remove(`snapshots/${id}`);
      return [...records.values()];
    } finally {
      await lock.release();
    }
  }

  gc(opts: GcOptions = {}): Promise<GcReport> {
    return collectGarbage(this, opts);
  }

  verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyRepository(this, opts);
  }

  /**
   * affectedBy lists the snapshots that the error findings of a verify
   * reach (affected.ts), oldest first.
   */
  async affectedBy(findings: readonly Finding[]): Promise<string[]> {
    const index = await this.loadIndex();
    return affectedSnapshots(
      { listSnapshots: () => this.listSnapshots(), readTree: (id) => this.readTree(id), packOf: (id) => index.get(id)?.pack },
      findings,
    );
  }

  async stats(): Promise<RepoStats> {
    const index = await this.reloadIndex();
    const snapshots = await this.listSnapshots();
    let packBytes = 0;
    for (const p of index.packs.values()) packBytes += p.size;
    let rawBytes = 0;
    for (const [, loc] of index.entries()) rawBytes += loc.rawLength;
    return {
      snapshots: snapshots.length,
      packs: index.packs.size,
      packBytes,
      blobs: index.blobCount,
      rawBytes,
      logicalBytes: snapshots.reduce((n, s) => n + s.stats.bytes, 0),
    };
  }

  /* ---- snapshots --------------------------------------------------------------- */

  /** listSnapshots returns all readable snapshots, oldest first, and the broken ones. */
  async listSnapshotsDetailed(): Promise<{ snapshots: SnapshotRecord[]; broken: BrokenSnapshot[] }> {
    const snapshots: SnapshotRecord[] = [];
    const broken: BrokenSnapshot[] = [];
    for (const name of await this.storage.list('snapshots')) {
      const id = name.slice('snapshots/'.length);
      if (id === '.keep') continue;
      try {
        snapshots.push(decodeSnapshotRecord(id, await this.storage.read(name)));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        broken.push({ id, message: err instanceof Error ? err.message : String(err) });
      }
    }
    snapshots.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
    return { snapshots, broken };
  }

  async listSnapshots(): Promise<SnapshotRecord[]> {
    return (await this.listSnapshotsDetailed()).snapshots;
  }

  /** findSnapshot resolves a full id or a unique prefix (at least 4 hex digits). */
  async findSnapshot(idOrPrefix: string): Promise<SnapshotRecord> {
    if (!/^[0-9a-f]{4,64}$/.test(idOrPrefix)) throw new SnapshotNotFoundError(idOrPrefix);
    const names = (await this.storage.list('snapshots')).map((n) => n.slice('snapshots/'.length));
    const matches = names.filter((id) => id.startsWith(idOrPrefix));
    if (matches.length === 0) throw new SnapshotNotFoundError(idOrPrefix);
    if (matches.length > 1) throw new AmbiguousIdError(idOrPrefix);
    const id = matches[0] as string;
    try {
      return decodeSnapshotRecord(id, await this.storage.read(`snapshots/${id}`));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new SnapshotNotFoundError(idOrPrefix);
      throw err;
    }
  }
}
