/**
 * gc: reclaims the space of data no snapshot uses.
 *
 * Under the exclusive lock (no snapshot, restore or delete runs meanwhile):
 *   1. find every blob: the index, plus the trailers of packs no readable
 *      index lists (leftovers of a crash, or packs whose index is damaged);
 *   2. mark every blob reachable from a snapshot record; if any record is
 *      unreadable or any reachable blob is missing, stop without deleting;
 *   3. packs with no live blob are deleted; packs that are mostly garbage
 *      are repacked: their live blobs, checked against their hashes, are
 *      copied into new packs;
 *   4. a new index listing exactly the live blobs is written, then the old
 *      index files are deleted, then the old packs.
 * A crash between any two steps leaves a valid repository: old and new index
 * may overlap (harmless), and packs no index lists are removed next time.
 */
import { CorruptionError, KovaError, isErrno } from '../../core/errors.js';
import { type BlobEntry, type BlobLocation, BlobType } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { type IndexedPack, encodeIndex } from '../format/index-format.js';
import { decodeTree } from '../format/tree.js';
import { IdSet } from '../repo/id-table.js';
import { MasterIndex, packName } from '../repo/master-index.js';
import { PackWriter } from '../repo/pack-writer.js';
import type { GcRepo } from '../repo/access.js';
import { readPackEntries } from './pack-reader.js';

export interface GcOptions {
  /** Repack a pack when less than this fraction of its bytes is live. Default 0.5. */
  readonly repackBelow?: number;
  /** For tests: called after each step, to simulate a crash there. */
  readonly afterStep?: (step: GcStep) => Promise<void> | void;
}

export type GcStep = 'marked' | 'repacked' | 'indexed' | 'old-index-removed' | 'packs-removed';

export interface GcReport {
  readonly snapshots: number;
  readonly liveBlobs: number;
  readonly packsBefore: number;
  readonly packsAfter: number;
  readonly packsDeleted: number;
  readonly packsRepacked: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** What gc knows of one pack on disk: counts only, never its blob list. */
interface PackState {
  size: number;
  /** Blobs its trailer lists. */
  blobs: number;
  indexed: boolean;
  liveBytes: number;
  /** Live blobs whose chosen copy is in this pack. */
  liveBlobs: number;
}

const misplaced = (packId: string): CorruptionError =>
  new CorruptionError(`gc refused: pack ${packId} does not hold the blobs the index places there; run verify`, { pack: packId });

/** Blobs listed per index file written by gc. */
const BLOBS_PER_INDEX = 100_000;

/**
 * Memory: gc holds the master index (about 54 bytes per blob), the live set
 * (about 36 bytes per live blob, id-table.ts), counts per pack, one tree at
 * a time per level of the walk, and at most BLOBS_PER_INDEX entries of the
 * index file being written; a pack's blob list is read from its trailer when
 * needed and dropped after. Repacked blobs are listed until their index is
 * written.
 */
export async function collectGarbage(repo: GcRepo, opts: GcOptions = {}): Promise<GcReport> {
  const repackBelow = opts.repackBelow ?? 0.5;
  const lock = await repo.lock('exclusive', 'gc');
  try {
    await repo.storage.cleanTemp();
    const { snapshots, broken } = await repo.listSnapshotsDetailed();
    if (broken.length > 0) {
      throw new KovaError('GC_REFUSED', `gc refused: snapshot ${broken[0]!.id} is unreadable (${broken[0]!.message}); run verify`, {
        status: 409,
      });
    }

    // 1. Every blob, wherever it is. Indexed copies (in packs on disk) are
    // preferred; copies only a pack's trailer knows of are kept aside.
    const index = await repo.reloadIndex();
    const oldIndexFiles = await repo.indexFiles();
    const onDisk = new Set((await repo.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)));
    const packs = new Map<string, PackState>();
    const unindexed = new MasterIndex();
    const locate = (id: string): BlobLocation | undefined => {
      const loc = index.get(id);
      return loc && onDisk.has(loc.pack) ? loc : unindexed.get(id);
    };
    for (const packId of onDisk) {
      const info = index.packs.get(packId);
      let entries: BlobEntry[];
      try {
        entries = await readPackEntries(repo.storage, packId);
      } catch (err) {
        if (info) throw err; // an indexed pack we cannot read: stop, verify will say more
        continue; // a damaged leftover nobody references
      }
      const size = await repo.storage.size(packName(packId));
      packs.set(packId, { size, blobs: entries.length, indexed: !!info, liveBytes: 0, liveBlobs: 0 });
      const unknown: BlobEntry[] = [];
      let here = 0;
      for (const e of entries) {
        const loc = index.get(e.id);
        if (!loc || !onDisk.has(loc.pack)) unknown.push(e);
        else if (loc.pack === packId && loc.offset === e.offset) here++;
      }
      // The index and the pack must agree on where its blobs are, or nothing is touched.
      if (here !== index.locatedIn(packId)) throw misplaced(packId);
      if (unknown.length > 0) unindexed.add({ id: packId, size, blobs: unknown });
    }

    // 2. Mark.
    const live = new IdSet();
    const readTree = async (id: string): Promise<void> => {
      const loc = locate(id);
      if (!loc || loc.type !== BlobType.Tree) throw new CorruptionError(`gc refused: tree ${id} is missing; run verify`, { blob: id });
      const raw = repo.codec.decode(
        await repo.storage.readAt(packName(loc.pack), loc.offset, loc.length),
        loc.compression,
        loc.rawLength,
        `tree ${id}`,
      );
      if (hashHex(raw) !== id) throw new CorruptionError(`gc refused: tree ${id} is damaged; run verify`, { blob: id });
      for (const n of decodeTree(raw, `tree ${id}`)) {
        if (n.subtree !== undefined && live.add(n.subtree)) await readTree(n.subtree);
        for (const c of n.content ?? []) {
          if (c.id === null || live.has(c.id)) continue;
          if (!locate(c.id)) throw new CorruptionError(`gc refused: data blob ${c.id} is missing; run verify`, { blob: c.id });
          live.add(c.id);
        }
      }
    };
    for (const s of snapshots) {
      const t = s.root.subtree!;
      if (live.add(t)) await readTree(t);
    }
    live.forEach((id) => {
      const loc = locate(id)!;
      const p = packs.get(loc.pack)!;
      p.liveBlobs++;
      p.liveBytes += loc.length;
    });
    /**
     * liveEntries lists the live blobs whose chosen copy is in `packId`, by
     * offset, read from its trailer (located as the index says); a pack that
     * does not hold what the index places there stops gc before it deletes.
     */
    const liveEntries = async (packId: string, p: PackState): Promise<BlobEntry[]> => {
      const out: BlobEntry[] = [];
      for (const e of await readPackEntries(repo.storage, packId)) {
        if (!live.has(e.id)) continue;
        const loc = locate(e.id)!;
        if (loc.pack !== packId || loc.offset !== e.offset) continue; // another copy is the one kept
        out.push({
          id: e.id,
          type: loc.type,
          compression: loc.compression,
          offset: loc.offset,
          length: loc.length,
          rawLength: loc.rawLength,
        });
      }
      if (out.length !== p.liveBlobs) throw misplaced(packId);
      return out.sort((a, b) => a.offset - b.offset);
    };
    await opts.afterStep?.('marked');

    // 3. Repack what is mostly garbage.
    const keep: string[] = [];
    const remove: string[] = [];
    const repack: string[] = [];
    for (const [id, p] of packs) {
      if (p.liveBlobs === 0) remove.push(id);
      // Repack only packs with dead blobs in them: a pack of tiny live blobs is
      // "mostly" header and trailer, and repacking would only rewrite it.
      else if (p.liveBlobs < p.blobs && p.liveBytes < repackBelow * p.size) repack.push(id);
      else keep.push(id);
    }
    const written: IndexedPack[] = [];
    if (repack.length > 0) {
      const writer = new PackWriter(repo.storage, repo.config.packSize, (pack) => written.push(pack));
      try {
        for (const id of repack) {
          for (const e of await liveEntries(id, packs.get(id)!)) {
            const stored = await repo.storage.readAt(packName(id), e.offset, e.length);
            const raw = repo.codec.decode(stored, e.compression, e.rawLength, `blob ${e.id}`);
            if (hashHex(raw) !== e.id)
              throw new CorruptionError(`gc refused: blob ${e.id} in pack ${id} is damaged; run verify`, { blob: e.id });
            await writer.add(e.type, e.id, stored, e.compression, e.rawLength);
          }
          remove.push(id);
        }
      } finally {
        // Even when failing: no write may land after the lock is released.
        await writer.flush().catch(() => undefined);
      }
      await writer.flush();
    }
    await opts.afterStep?.('repacked');

    // 4. New index, then old index files, then old packs. Kept packs' live
    // entries are read pack by pack, an index file's worth at a time.
    const newIndexFiles = new Set<string>();
    let group: IndexedPack[] = [];
    let groupBlobs = 0;
    const writeGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const buf = encodeIndex(group);
      const name = `index/${hashHex(buf)}`;
      await repo.storage.write(name, buf);
      newIndexFiles.add(name);
      group = [];
      groupBlobs = 0;
    };
    const list = async (pack: IndexedPack): Promise<void> => {
      if (groupBlobs > 0 && groupBlobs + pack.blobs.length > BLOBS_PER_INDEX) await writeGroup();
      group.push(pack);
      groupBlobs += pack.blobs.length;
    };
    for (const id of keep) await list({ id, size: packs.get(id)!.size, blobs: await liveEntries(id, packs.get(id)!) });
    for (const pack of written) await list(pack);
    await writeGroup();
    await opts.afterStep?.('indexed');
    for (const name of oldIndexFiles) if (!newIndexFiles.has(name)) await repo.storage.remove(name);
    await opts.afterStep?.('old-index-removed');
    // Packs are named by their content: a repacked pack can come out identical
    // to one being removed (a leftover of an interrupted gc). Never delete what
    // the new index lists.
    const listed = new Set([...keep, ...written.map((p) => p.id)]);
    for (const id of remove) {
      if (listed.has(id)) continue;
      try {
        await repo.storage.remove(packName(id));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    await opts.afterStep?.('packs-removed');
    await repo.reloadIndex();

    const bytesBefore = [...packs.values()].reduce((n, p) => n + p.size, 0);
    const bytesAfter = keep.reduce((n, id) => n + packs.get(id)!.size, 0) + written.reduce((n, p) => n + p.size, 0);
    return {
      snapshots: snapshots.length,
      liveBlobs: live.size,
      packsBefore: packs.size,
      packsAfter: keep.length + written.length,
      packsDeleted: remove.filter((id) => !listed.has(id)).length,
      packsRepacked: repack.length,
      bytesBefore,
      bytesAfter,
    };
  } finally {
    await lock.release();
  }
}
