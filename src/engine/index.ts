/**
 * engine: the snapshot engine's public entry point. Code outside src/engine
 * (services, cli, tests of the product) imports from here, never from the
 * engine's inner files, so the engine can rearrange its inside freely.
 */
export {
  Repository,
  type BrokenSnapshot,
  type IndexProblem,
  type OpenOptions,
  type RepoStats,
  type SnapshotOptions,
} from './repo/repository.js';
export type { InitOptions, RepoConfig } from './repo/config.js';
export type { LockKind } from './repo/lock.js';
export { packName } from './repo/master-index.js';
export type { SnapshotRecord, SnapshotStats, SkippedEntry } from './format/snapshot-record.js';
export type { CaptureOptions, CommitOptions, Draft, SnapshotSession } from './snapshot/session.js';
export type { Source } from './snapshot/archiver.js';
export type { RestoreOptions, RestoreResult } from './restore/restorer.js';
export type { GcOptions, GcReport, GcStep } from './gc/gc.js';
export type { Finding, VerifyOptions, VerifyReport } from './verify/verify.js';
export type { Storage } from './storage/storage.js';
export { LocalStorage } from './storage/local-storage.js';
export { MemoryStorage } from './storage/memory-storage.js';
export type { Progress, ProgressFn } from './util/progress.js';
export { isAlive } from './util/process-identity.js';
export { native, setTimesNs, syncfs, type EntryStat } from './native.js';
export * as fsx from './fsx/fsx.js';
export { fsyncDir } from './fsx/durable.js';
export { walkEntries } from './fsx/walk.js';
export { type SpaceNeed, addNeeds, checkSpace, restoreFootprint, roomFor, spaceBound } from './restore/space.js';
export { asDiskFull, freeBytes } from './util/disk-space.js';
export { packSlice } from './verify/verify.js';
export { compareNames, type NodeType, type TreeNode } from './format/tree.js';
export { PathNotFoundError, listDirectory, resolvePath } from './browse/browse.js';
export { fileBytes } from './browse/content.js';
export { type Change, type ChangeKind, type DiffOptions, diffTrees } from './browse/diff.js';
export { LiveTree, type LiveTop, liveModified } from './browse/live.js';
export { OMITTED_NOTE, tarStream } from './browse/tar.js';
