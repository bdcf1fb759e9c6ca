/**
 * verify: checks a repository and returns every problem found (it does not
 * stop at the first).
 *
 * Structure: every index file is intact; every indexed pack exists, has the
 * indexed size, and its own trailer agrees with the index; every snapshot
 * record is readable; every tree reachable from a snapshot is present and
 * valid, and every data blob it references is indexed.
 * With readData: every pack is read whole, its name checked against its
 * hash, and every blob decompressed and checked against its id.
 *
 * Errors mean data is missing or damaged. Warnings are harmless leftovers
 * (packs no index lists, from an interrupted snapshot) that gc removes.
 */
import { isErrno } from '../../core/errors.js';
import { BlobType } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import type { TreeNode } from '../format/tree.js';
import { readPackEntries } from '../gc/pack-reader.js';
import { packName } from '../repo/master-index.js';
import type { VerifyRepo } from '../repo/access.js';

export interface Finding {
  readonly severity: 'error' | 'warning';
  /** A stable kind, e.g. "pack-missing", "blob-damaged". */
  readonly kind: string;
  readonly message: string;
  /** The pack the finding is about, when it is about one. */
  readonly pack?: string;
  /** The blob (data or tree) the finding is about, when it is about one. */
  readonly blob?: string;
}

export interface VerifyOptions {
  readonly readData?: boolean;
  /**
   * Read only one share of the packs' data: those whose id falls in slice
   * `slice` of `of` (by the id's first 32 bits). Successive checks with
   * slice 0, 1, … of-1 read every pack once; a pack's slice never changes,
   * and new packs land in every slice alike. Implies readData.
   */
  readonly readShare?: { readonly slice: number; readonly of: number };
  readonly onProgress?: (done: number, total: number) => void;
}

export interface VerifyReport {
  readonly findings: readonly Finding[];
  readonly snapshots: number;
  readonly packs: number;
  readonly blobs: number;
  readonly bytesRead: number;
}

/** packSlice is the share (0 … of-1) a pack belongs to for VerifyOptions.readShare. */
export function packSlice(packId: string, of: number): number {
  return parseInt(packId.slice(0, 8), 16) % of;
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function verifyRepository(repo: VerifyRepo, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const findings: Finding[] = [];
  const error = (kind: string, message: string, about: { pack?: string; blob?: string } = {}): void =>
    void findings.push({ severity: 'error', kind, message, ...about });
  const warn = (kind: string, message: string): void => void findings.push({ severity: 'warning', kind, message });
  const lock = await repo.lock('read', 'verify');
  let bytesRead = 0;
  try {
    const index = await repo.reloadIndex();
    for (const p of repo.loadProblems) error('index-damaged', p.message);

    // Packs: presence, size, trailer against index.
    const onDisk = new Set((await repo.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)));
    const indexedBlobsByPack = new Map<string, Map<string, number>>();
    for (const [id, loc] of index.entries()) {
      let m = indexedBlobsByPack.get(loc.pack);
      if (!m) indexedBlobsByPack.set(loc.pack, (m = new Map()));
      m.set(id, loc.offset);
    }
    for (const [packId, info] of index.packs) {
      if (!onDisk.has(packId)) {
        error('pack-missing', `pack ${packId} is listed in the index but missing`, { pack: packId });
        continue;
      }
      try {
        const size = await repo.storage.size(packName(packId));
        if (size !== info.size) {
          error('pack-size', `pack ${packId} has ${size} bytes, the index says ${info.size}`, { pack: packId });
          continue;
        }
        const entries = new Map((await readPackEntries(repo.storage, packId)).map((e) => [e.id, e.offset]));
        for (const [blobId, offset] of indexedBlobsByPack.get(packId) ?? []) {
          if (entries.get(blobId) !== offset)
            error('index-mismatch', `blob ${blobId}: the index and pack ${packId} disagree`, { pack: packId, blob: blobId });
        }
      } catch (err) {
        error('pack-damaged', msg(err), { pack: packId });
      }
    }
    for (const packId of onDisk) {
      if (!index.packs.has(packId))
        warn('pack-unindexed', `pack ${packId} is not in any index (left by an interrupted operation; gc removes it)`);
    }

    // Snapshots and the trees they reach.
    const { snapshots, broken } = await repo.listSnapshotsDetailed();
    for (const b of broken) error('snapshot-damaged', b.message);
    const seenTrees = new Set<string>();
    const seenData = new Set<string>();
    const walk = async (snap: string, treeId: string, path: string): Promise<void> => {
      if (seenTrees.has(treeId)) return;
      seenTrees.add(treeId);
      const loc = index.get(treeId);
      if (!loc) {
        error('tree-missing', `snapshot ${snap}: tree ${treeId} (${path || '/'}) is not in the index`, { blob: treeId });
        return;
      }
      if (loc.type !== BlobType.Tree) {
        error('tree-type', `snapshot ${snap}: blob ${treeId} (${path || '/'}) is not a tree`, { blob: treeId });
        return;
      }
      let nodes: readonly TreeNode[];
      try {
        nodes = await repo.readTree(treeId);
      } catch (err) {
        error('tree-damaged', `snapshot ${snap}: ${path || '/'}: ${msg(err)}`, { blob: treeId });
        return;
      }
      for (const n of nodes) {
        const child = `${path}/${n.name.toString()}`;
        if (n.subtree !== undefined) await walk(snap, n.subtree, child);
        for (const c of n.content ?? []) {
          if (c.id === null || seenData.has(c.id)) continue;
          seenData.add(c.id);
          if (!index.has(c.id))
            error('blob-missing', `snapshot ${snap}: file ${child}: data blob ${c.id} is not in the index`, { blob: c.id });
        }
      }
    };
    for (const s of snapshots) await walk(s.id, s.root.subtree!, '');

    // Data: every byte of every pack, or of one share of them.
    if (opts.readData || opts.readShare) {
      const share = opts.readShare;
      const ids = share ? [...onDisk].filter((id) => packSlice(id, share.of) === share.slice) : [...onDisk];
      let done = 0;
      for (const packId of ids) {
        const name = packName(packId);
        try {
          const buf = await repo.storage.read(name);
          bytesRead += buf.length;
          if (hashHex(buf) !== packId) error('pack-hash', `pack ${packId} does not match its name (damaged)`, { pack: packId });
          for (const e of await readPackEntries(repo.storage, packId)) {
            try {
              const raw = repo.codec.decode(buf.subarray(e.offset, e.offset + e.length), e.compression, e.rawLength, `blob ${e.id}`);
              if (hashHex(raw) !== e.id)
                error('blob-damaged', `blob ${e.id} in pack ${packId} does not match its hash`, { pack: packId, blob: e.id });
            } catch (err) {
              error('blob-damaged', `pack ${packId}: ${msg(err)}`, { pack: packId, blob: e.id });
            }
          }
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue;
          error('pack-damaged', msg(err), { pack: packId });
        }
        opts.onProgress?.(++done, ids.length);
      }
    }
    return { findings, snapshots: snapshots.length, packs: onDisk.size, blobs: index.blobCount, bytesRead };
  } finally {
    await lock.release();
  }
}
