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
import { packName } from '../repo/master-index.js';
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

interface PackState {
  size: number;
  entries: BlobEntry[];
  indexed: boolean;
  liveBytes: number;
  live: BlobEntry[];
}

/** Blobs listed per index file written by gc. */
const BLOBS_PER_INDEX = 200_000;

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

    // 1. Every blob, wherever it is. Indexed copies are preferred.
    const index = await repo.reloadIndex();
    const oldIndexFiles = await repo.indexFiles();
    const onDisk = new Set((await repo.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)));
    const packs = new Map<string, PackState>();
    const where = new Map<string, BlobLocation>();
    for (const [id, loc] of index.entries()) {
      if (!onDisk.has(loc.pack)) continue;
      where.set(id, loc);
    }
    for (const packId of onDisk) {
      const info = index.packs.get(packId);
      let entries: BlobEntry[];
      try {
        entries = await readPackEntries(repo.storage, packId);
      } catch (err) {
        if (info) throw err; // an indexed pack we cannot read: stop, verify will say more
        continue; // a damaged leftover nobody references
      }
      packs.set(packId, { size: await repo.storage.size(packName(packId)), entries, indexed: !!info, liveBytes: 0, live: [] });
      for (const e of entries) {
        if (!where.has(e.id)) where.set(e.id, { ...e, pack: packId });
      }
    }

    // 2. Mark.
    const live = new Set<string>();
    const readTree = async (id: string): Promise<void> => {
      const loc = where.get(id);
      if (!loc || loc.type !== BlobType.Tree) throw new CorruptionError(`gc refused: tree ${id} is missing; run verify`, { blob: id });
      const raw = repo.codec.decode(
        await repo.storage.readAt(packName(loc.pack), loc.offset, loc.length),
        loc.compression,
        loc.rawLength,
        `tree ${id}`,
      );
      if (hashHex(raw) !== id) throw new CorruptionError(`gc refused: tree ${id} is damaged; run verify`, { blob: id });
      for (const n of decodeTree(raw, `tree ${id}`)) {
        if (n.subtree !== undefined && !live.has(n.subtree)) {
          live.add(n.subtree);
          await readTree(n.subtree);
        }
        for (const c of n.content ?? []) {
          if (c.id === null || live.has(c.id)) continue;
          if (!where.has(c.id)) throw new CorruptionError(`gc refused: data blob ${c.id} is missing; run verify`, { blob: c.id });
          live.add(c.id);
        }
      }
    };
    for (const s of snapshots) {
      const t = s.root.subtree!;
      if (!live.has(t)) {
        live.add(t);
        await readTree(t);
      }
    }
    for (const id of live) {
      const loc = where.get(id)!;
      const p = packs.get(loc.pack)!;
      p.live.push({ id, type: loc.type, compression: loc.compression, offset: loc.offset, length: loc.length, rawLength: loc.rawLength });
      p.liveBytes += loc.length;
    }
    await opts.afterStep?.('marked');

    // 3. Repack what is mostly garbage.
    const keep: IndexedPack[] = [];
    const remove: string[] = [];
    const repack: Array<[string, PackState]> = [];
    for (const [id, p] of packs) {
      if (p.live.length === 0) remove.push(id);
      // Repack only packs with dead blobs in them: a pack of tiny live blobs is
      // "mostly" header and trailer, and repacking would only rewrite it.
      else if (p.live.length < p.entries.length && p.liveBytes < repackBelow * p.size) repack.push([id, p]);
      else keep.push({ id, size: p.size, blobs: p.live.sort((a, b) => a.offset - b.offset) });
    }
    const written: IndexedPack[] = [];
    if (repack.length > 0) {
      const writer = new PackWriter(repo.storage, repo.config.packSize, (pack) => written.push(pack));
      try {
        for (const [id, p] of repack) {
          for (const e of p.live.sort((a, b) => a.offset - b.offset)) {
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

    // 4. New index, then old index files, then old packs.
    const all = [...keep, ...written];
    const newIndexFiles = new Set<string>();
    for (let i = 0, blobs = 0, start = 0; i <= all.length; i++) {
      if (i === all.length || (blobs > 0 && blobs + all[i]!.blobs.length > BLOBS_PER_INDEX)) {
        if (i > start) {
          const buf = encodeIndex(all.slice(start, i));
          const name = `index/${hashHex(buf)}`;
          await repo.storage.write(name, buf);
          newIndexFiles.add(name);
        }
        start = i;
        blobs = 0;
      }
      if (i < all.length) blobs += all[i]!.blobs.length;
    }
    await opts.afterStep?.('indexed');
    for (const name of oldIndexFiles) if (!newIndexFiles.has(name)) await repo.storage.remove(name);
    await opts.afterStep?.('old-index-removed');
    // Packs are named by their content: a repacked pack can come out identical
    // to one being removed (a leftover of an interrupted gc). Never delete what
    // the new index lists.
    const listed = new Set(all.map((p) => p.id));
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
    const bytesAfter = all.reduce((n, p) => n + p.size, 0);
    return {
      snapshots: snapshots.length,
      liveBlobs: live.size,
      packsBefore: packs.size,
      packsAfter: all.length,
      packsDeleted: remove.filter((id) => !listed.has(id)).length,
      packsRepacked: repack.length,
      bytesBefore,
      bytesAfter,
    };
  } finally {
    await lock.release();
  }
}
