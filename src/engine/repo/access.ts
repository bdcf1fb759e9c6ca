/**
 * access: the narrow views of an open repository that the operations working
 * on it (snapshot sessions, gc, verify) need. Repository implements all of
 * them; the operations depend on these interfaces instead of on Repository,
 * so repository.ts can import the operations without an import cycle (the
 * restorer's BlobSource follows the same pattern).
 */
import type { GearConfig } from '../chunker/gear.js';
import type { SnapshotRecord } from '../format/snapshot-record.js';
import type { TreeNode } from '../format/tree.js';
import type { Storage } from '../storage/storage.js';
import type { BlobCodec } from './codec.js';
import type { RepoConfig } from './config.js';
import type { LockKind, RepoLock } from './lock.js';
import type { MasterIndex } from './master-index.js';

/** A file the index loader could not use. */
export interface IndexProblem {
  readonly file: string;
  readonly message: string;
}

/** A snapshot record that could not be read. */
export interface BrokenSnapshot {
  readonly id: string;
  readonly message: string;
}

/** What every operation uses: the files, the settings, the lock, the index. */
export interface RepoBase {
  readonly storage: Storage;
  readonly config: RepoConfig;
  readonly codec: BlobCodec;
  /** lock takes a repository lock (see repo/lock.ts for the kinds). */
  lock(kind: LockKind, operation: string): Promise<RepoLock>;
  /** reloadIndex drops the cached index and reads it again. */
  reloadIndex(): Promise<MasterIndex>;
}

/** What a snapshot session needs: chunking settings and the parent's trees. */
export interface SessionRepo extends RepoBase {
  readonly gear: GearConfig;
  /** Where the repository lives, for messages (a directory or a URL). */
  readonly location: string;
  /** `cache: false`: read a tree the walk reads only once, without keeping it (repository.ts). */
  readTree(id: string, opts?: { cache?: boolean }): Promise<TreeNode[]>;
  /** Drops the cached index, after a failed session removed what it wrote. */
  forgetIndex(): void;
}

/** What gc needs: every index file, pack file and snapshot record. */
export interface GcRepo extends RepoBase {
  indexFiles(): Promise<string[]>;
  packFiles(): Promise<string[]>;
  listSnapshotsDetailed(): Promise<{ snapshots: SnapshotRecord[]; broken: BrokenSnapshot[] }>;
  /** Drops the cached index (after gc replaced it); the next use reads it again. */
  forgetIndex(): void;
}

/** What verify needs: the listings, the trees and the index loader's problems. */
export interface VerifyRepo extends RepoBase {
  readonly loadProblems: readonly IndexProblem[];
  readTree(id: string): Promise<TreeNode[]>;
  packFiles(): Promise<string[]>;
  listSnapshotsDetailed(): Promise<{ snapshots: SnapshotRecord[]; broken: BrokenSnapshot[] }>;
}
