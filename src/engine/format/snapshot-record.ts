/**
 * snapshot-record: the file that makes a snapshot exist. It is written last,
 * after every pack and index it depends on is durable, and named by the
 * BLAKE3 of its bytes (snapshots/<id>). Deleting a snapshot deletes only
 * this file; GC reclaims the data later.
 */
import { CorruptionError } from '../../core/errors.js';
import { hashHex } from './hash.js';
import { type TreeNode, nodeFromJson, nodeToJson } from './tree.js';

/** Statistics of one snapshot, as recorded when it was taken. */
export interface SnapshotStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** FIFOs and device nodes. */
  specials: number;
  /** Entries not captured (sockets, entries that vanished while read). */
  skipped: number;
  /** Logical bytes of all regular files (holes included). */
  bytes: number;
  /** Bytes read from the source (unchanged files are not read). */
  bytesRead: number;
  /** Files reused from the parent without reading them. */
  filesReused: number;
  /** Blobs this snapshot added, their raw bytes and their stored bytes. */
  newBlobs: number;
  newBytes: number;
  storedBytes: number;
  durationMs: number;
}

export interface SkippedEntry {
  readonly path: string;
  readonly reason: string;
}

export interface SnapshotRecord {
  readonly id: string;
  /** ISO 8601 UTC. */
  readonly time: string;
  readonly label: string | null;
  readonly tags: readonly string[];
  /** The snapshot this one was taken incrementally against, if any. */
  readonly parent: string | null;
  readonly hostname: string;
  /** Absolute paths of the captured directories. */
  readonly sources: readonly string[];
  /** The root directory: the captured directory, or a synthetic one whose
   * children are the named sources. */
  readonly root: TreeNode;
  /** Wall-clock time (ns) when the scan started: files whose ctime is not
   * older must be re-read by the next incremental snapshot. */
  readonly scanStartNs: bigint;
  readonly stats: SnapshotStats;
  /** The first skipped entries, for reports (at most 100). */
  readonly skippedEntries: readonly SkippedEntry[];
}

export type NewSnapshotRecord = Omit<SnapshotRecord, 'id'>;

export function encodeSnapshotRecord(r: NewSnapshotRecord): { id: string; bytes: Buffer } {
  const json = {
    v: 1,
    time: r.time,
    label: r.label,
    tags: r.tags,
    parent: r.parent,
    hostname: r.hostname,
    sources: r.sources,
    root: nodeToJson(r.root),
    scanStartNs: r.scanStartNs.toString(),
    stats: r.stats,
    skippedEntries: r.skippedEntries,
  };
  const bytes = Buffer.from(JSON.stringify(json, null, 1));
  return { id: hashHex(bytes), bytes };
}

export function decodeSnapshotRecord(id: string, bytes: Buffer): SnapshotRecord {
  const where = `snapshot ${id}`;
  if (hashHex(bytes) !== id) throw new CorruptionError(`${where}: record checksum mismatch`, { snapshot: id });
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CorruptionError(`${where}: record is not valid JSON`, { snapshot: id }, err);
  }
  if (j.v !== 1 || typeof j.time !== 'string' || typeof j.scanStartNs !== 'string') {
    throw new CorruptionError(`${where}: not a version 1 snapshot record`, { snapshot: id });
  }
  const root = nodeFromJson(j.root, where, true);
  if (root.type !== 'dir') throw new CorruptionError(`${where}: root is not a directory`, { snapshot: id });
  return {
    id,
    time: j.time,
    label: typeof j.label === 'string' ? j.label : null,
    tags: Array.isArray(j.tags) ? j.tags.filter((t): t is string => typeof t === 'string') : [],
    parent: typeof j.parent === 'string' ? j.parent : null,
    hostname: typeof j.hostname === 'string' ? j.hostname : '',
    sources: Array.isArray(j.sources) ? j.sources.filter((t): t is string => typeof t === 'string') : [],
    root,
    scanStartNs: BigInt(j.scanStartNs),
    stats: j.stats as SnapshotStats,
    skippedEntries: Array.isArray(j.skippedEntries) ? (j.skippedEntries as SkippedEntry[]) : [],
  };
}
