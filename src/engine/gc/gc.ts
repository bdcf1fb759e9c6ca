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
import { type BlobEntry, BlobType } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { type IndexedPack, type RawIndexedPack, encodeRawIndex } from '../format/index-format.js';
import { ENTRY_BYTES, decodeEntry, encodeEntry } from '../format/pack-format.js';
import { treeRefs } from '../format/tree.js';
import { ID_BYTES, idBytes } from '../repo/id-table.js';
import { MasterIndex, type RawLocation, packName } from '../repo/master-index.js';
import { PackWriter } from '../repo/pack-writer.js';
import type { GcRepo } from '../repo/access.js';
import { readRawPackEntries } from './pack-reader.js';

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
  readonly id: string;
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

/** Trees read at once while marking: their reads overlap the decoding of others. */
const TREE_READS = 8;

/** encodeEntries lays out entries as a trailer and an index file hold them. */
function encodeEntries(entries: readonly BlobEntry[]): Buffer {
  const out = Buffer.alloc(entries.length * ENTRY_BYTES);
  entries.forEach((e, i) => encodeEntry(e, out, i * ENTRY_BYTES));
  return out;
}

/** sortByOffset returns `count` entries (ENTRY_BYTES each) ordered by offset: `entries` itself when they are. */
function sortByOffset(entries: Buffer, count: number): Buffer {
  let sorted = true;
  for (let i = 1; i < count && sorted; i++)
    sorted = entries.readUInt32LE(i * ENTRY_BYTES + 4) > entries.readUInt32LE((i - 1) * ENTRY_BYTES + 4);
  if (sorted) return entries;
  const order = Array.from({ length: count }, (_, i) => i).sort(
    (a, b) => entries.readUInt32LE(a * ENTRY_BYTES + 4) - entries.readUInt32LE(b * ENTRY_BYTES + 4),
  );
  const out = Buffer.alloc(count * ENTRY_BYTES);
  order.forEach((from, i) => entries.copy(out, i * ENTRY_BYTES, from * ENTRY_BYTES, (from + 1) * ENTRY_BYTES));
  return out;
}

/**
 * Memory: gc holds the master index (about 54 bytes per blob), the live set
 * (one byte per blob the index or a stray trailer lists), counts per pack,
 * the ids of the trees still to be read (at most TREE_READS trees are held
 * at once), and at most BLOBS_PER_INDEX entries (48 bytes each) of the
 * index file being written; a pack's trailer is read when needed and
 * dropped after.
 * Blobs are handled as the bytes of their ids and entries, without an
 * object per blob. Repacked blobs are listed until their index is written.
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
    index.seal();
    const oldIndexFiles = await repo.indexFiles();
    const onDisk = new Set((await repo.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)));
    const packs = new Map<string, PackState>();
    /** By index pack number: the packs on disk (indexed ones only). */
    const indexedOnDisk: (PackState | undefined)[] = [];
    for (const packId of onDisk) {
      const n = index.packNumberOf(packId);
      if (n >= 0) indexedOnDisk[n] = { id: packId, size: 0, blobs: 0, indexed: true, liveBytes: 0, liveBlobs: 0 };
    }
    const unindexed = new MasterIndex();
    const id = Buffer.alloc(ID_BYTES);
    const chosen: RawLocation = { pack: 0, type: 0, compression: 0, offset: 0, length: 0, rawLength: 0 };
    /**
     * The live set: a byte per blob of the index and per blob only a
     * trailer lists, set when the blob is reached (blobs are numbered by
     * MasterIndex.seal). Filled in step 2.
     */
    let liveIndexed = new Uint8Array(0);
    let liveUnindexed = new Uint8Array(0);
    let liveCount = 0;
    /** Where locate found the blob's byte in the live set. */
    let marks = liveIndexed;
    let markAt = 0;
    /**
     * locate fills `chosen` with where the copy gc keeps of the blob whose id
     * is the 32 bytes at `at` in `src`, points `marks`/`markAt` at its byte
     * of the live set, and returns its pack, or undefined when there is none.
     */
    const locate = (src: Buffer, at: number): PackState | undefined => {
      let n = index.locateSealed(src, at, chosen);
      if (n >= 0) {
        const p = indexedOnDisk[chosen.pack];
        if (p) {
          marks = liveIndexed;
          markAt = n;
          return p;
        }
      }
      n = unindexed.locateSealed(src, at, chosen);
      if (n < 0) return undefined;
      marks = liveUnindexed;
      markAt = n;
      return packs.get(unindexed.packIdOf(chosen.pack));
    };
    for (const packId of onDisk) {
      const n = index.packNumberOf(packId);
      let raw;
      try {
        raw = await readRawPackEntries(repo.storage, packId);
      } catch (err) {
        if (n >= 0) throw err; // an indexed pack we cannot read: stop, verify will say more
        continue; // a damaged leftover nobody references
      }
      const p = indexedOnDisk[n] ?? { id: packId, size: 0, blobs: 0, indexed: false, liveBytes: 0, liveBlobs: 0 };
      p.size = raw.size;
      p.blobs = raw.count;
      packs.set(packId, p);
      const unknown: BlobEntry[] = [];
      let here = 0;
      const e = raw.entries;
      for (let at = 0; at < e.length; at += ENTRY_BYTES) {
        if (index.locateSealed(e, at + 16, chosen) < 0 || !indexedOnDisk[chosen.pack]) unknown.push(decodeEntry(e, at, `pack ${packId}`));
        else if (chosen.pack === n && chosen.offset === e.readUInt32LE(at + 4)) here++;
      }
      // The index and the pack must agree on where its blobs are, or nothing is touched.
      if (here !== index.locatedIn(packId)) throw misplaced(packId);
      if (unknown.length > 0) unindexed.add({ id: packId, size: raw.size, blobs: unknown });
    }
    unindexed.seal();
    liveIndexed = new Uint8Array(index.blobCount);
    liveUnindexed = new Uint8Array(unindexed.blobCount);

    // 2. Mark, counting each live blob in the pack of its chosen copy. Trees
    // are read TREE_READS at a time, each once however many snapshots hold it;
    // only the ids they refer to are decoded.
    /** mark adds blob `hex` to the live set: its pack when it is new (`chosen` then holds its location), else null. */
    const mark = (hex: string, type: BlobType): PackState | null => {
      idBytes(hex, id);
      const p = locate(id, 0);
      if (!p || (type === BlobType.Tree && chosen.type !== BlobType.Tree)) {
        const what = type === BlobType.Tree ? 'tree' : 'data blob';
        throw new CorruptionError(`gc refused: ${what} ${hex} is missing; run verify`, { blob: hex });
      }
      if (marks[markAt] !== 0) return null;
      marks[markAt] = 1;
      liveCount++;
      p.liveBlobs++;
      p.liveBytes += chosen.length;
      return p;
    };
    const pending: { id: string; pack: string; offset: number; length: number; compression: number; rawLength: number }[] = [];
    const markTree = (hex: string): void => {
      const p = mark(hex, BlobType.Tree);
      if (!p) return;
      pending.push({
        id: hex,
        pack: p.id,
        offset: chosen.offset,
        length: chosen.length,
        compression: chosen.compression,
        rawLength: chosen.rawLength,
      });
    };
    const readTree = async (t: (typeof pending)[number]): Promise<void> => {
      const stored = await repo.storage.readAt(packName(t.pack), t.offset, t.length);
      const raw = repo.codec.decode(stored, t.compression as 0 | 1, t.rawLength, `tree ${t.id}`);
      if (hashHex(raw) !== t.id) throw new CorruptionError(`gc refused: tree ${t.id} is damaged; run verify`, { blob: t.id });
      const refs = treeRefs(raw, `tree ${t.id}`);
      for (const s of refs.subtrees) markTree(s);
      for (const d of refs.data) mark(d, BlobType.Data);
    };
    for (const s of snapshots) markTree(s.root.subtree!);
    await new Promise<void>((resolve, reject) => {
      let reading = 0;
      let failure: { err: unknown } | null = null;
      const pump = (): void => {
        while (!failure && reading < TREE_READS && pending.length > 0) {
          reading++;
          readTree(pending.pop()!).then(
            () => {
              reading--;
              pump();
            },
            (err: unknown) => {
              reading--;
              failure ??= { err };
              pump();
            },
          );
        }
        // Settle only when no read is in flight, failed or not.
        if (reading === 0) {
          if (failure) reject(failure.err);
          else if (pending.length === 0) resolve();
        }
      };
      pump();
    });

    /**
     * liveEntries lists the live blobs whose chosen copy is in pack `p`, as
     * index entries ordered by offset, from its trailer (located as the index
     * says); a pack that does not hold what the index places there stops gc
     * before it deletes.
     */
    const liveEntries = async (p: PackState): Promise<RawIndexedPack> => {
      const e = (await readRawPackEntries(repo.storage, p.id)).entries;
      const out = Buffer.alloc(p.liveBlobs * ENTRY_BYTES);
      let count = 0;
      for (let at = 0; at < e.length; at += ENTRY_BYTES) {
        const offset = e.readUInt32LE(at + 4);
        if (locate(e, at + 16) !== p || chosen.offset !== offset || marks[markAt] === 0) continue; // dead, or another copy is the one kept
        if (count === p.liveBlobs) throw misplaced(p.id);
        const o = count++ * ENTRY_BYTES;
        out[o] = chosen.type;
        out[o + 1] = chosen.compression;
        out.writeUInt32LE(offset, o + 4);
        out.writeUInt32LE(chosen.length, o + 8);
        out.writeUInt32LE(chosen.rawLength, o + 12);
        e.copy(out, o + 16, at + 16, at + ENTRY_BYTES);
      }
      if (count !== p.liveBlobs) throw misplaced(p.id);
      return { id: p.id, size: p.size, count, entries: sortByOffset(out, count) };
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
          const entries = await liveEntries(packs.get(id)!);
          for (let at = 0; at < entries.entries.length; at += ENTRY_BYTES) {
            const e = decodeEntry(entries.entries, at, `pack ${id}`);
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
    let group: RawIndexedPack[] = [];
    let groupBlobs = 0;
    const writeGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const buf = encodeRawIndex(group);
      const name = `index/${hashHex(buf)}`;
      await repo.storage.write(name, buf);
      newIndexFiles.add(name);
      group = [];
      groupBlobs = 0;
    };
    const list = async (pack: RawIndexedPack): Promise<void> => {
      if (groupBlobs > 0 && groupBlobs + pack.count > BLOBS_PER_INDEX) await writeGroup();
      group.push(pack);
      groupBlobs += pack.count;
    };
    for (const id of keep) await list(await liveEntries(packs.get(id)!));
    for (const pack of written) await list({ id: pack.id, size: pack.size, count: pack.blobs.length, entries: encodeEntries(pack.blobs) });
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
    // The cached index lists what is gone: the next use reads the new one.
    repo.forgetIndex();

    const bytesBefore = [...packs.values()].reduce((n, p) => n + p.size, 0);
    const bytesAfter = keep.reduce((n, id) => n + packs.get(id)!.size, 0) + written.reduce((n, p) => n + p.size, 0);
    return {
      snapshots: snapshots.length,
      liveBlobs: liveCount,
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
