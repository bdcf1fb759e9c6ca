/**
 * copy: copies snapshots from one repository to another (local to S3, S3 to
 * local, local to local), sending only the blobs the destination lacks.
 *
 * Under a read lock on the source and a write lock on the destination:
 *   1. walk every selected snapshot's trees in the source and list the blobs
 *      the destination does not hold in a pack that exists (and, with
 *      checkDestination, whose bytes match its name);
 *   2. read them from the source's packs, a range of adjacent blobs at a
 *      time (a few ranges ahead, so a bucket's round trips overlap), check
 *      each against its id (BLAKE3 of the plaintext) and add the stored
 *      bytes, unchanged, to new packs in the destination (several packs
 *      uploading at once);
 *   3. every `checkpointPacks` packs, write an index file for the packs
 *      written so far, so a copy killed midway resumes from there;
 *   4. write the last index file (and, when packs were found missing or
 *      damaged, replace the index files naming them and delete the damaged
 *      packs), then each snapshot record, byte for byte as in the source.
 * Nothing refers to new data before its index exists, and no record exists
 * before all its data is indexed: a crash at any point leaves the
 * destination's snapshots as they were and at most some unindexed packs
 * that gc removes.
 */
import { CorruptionError } from '../../core/errors.js';
import type { BlobLocation } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { type IndexedPack, decodeIndex, encodeIndex } from '../format/index-format.js';
import { decodeSnapshotRecord, type SnapshotRecord } from '../format/snapshot-record.js';
import { type ProgressFn, ProgressTracker } from '../util/progress.js';
import { packName } from './master-index.js';
import { PackWriter } from './pack-writer.js';
import type { Repository } from './repository.js';

export interface CopyOptions {
  /** Ids or unique prefixes of the snapshots to copy; default all, oldest first. */
  readonly snapshots?: readonly string[];
  /** Read each destination pack the copy would rely on and check it against its name. Default false. */
  readonly checkDestination?: boolean;
  /** Write an index file after this many new packs. Default 4. */
  readonly checkpointPacks?: number;
  /** Bytes are raw (uncompressed) bytes of the blobs sent. */
  readonly onProgress?: ProgressFn;
}

export interface CopyReport {
  /** Snapshot records written to the destination. */
  readonly copied: readonly string[];
  /** Selected snapshots the destination already had. */
  readonly present: readonly string[];
  readonly blobsSent: number;
  /** Raw bytes of the blobs sent. */
  readonly rawBytesSent: number;
  /** Bytes written to the destination: packs, index files and records (before encryption). */
  readonly bytesSent: number;
  /** Destination packs found missing or damaged and replaced. */
  readonly packsRepaired: number;
}

export const COPY_DEFAULTS = {
  checkpointPacks: 4,
  /** Adjacent blobs closer than this are read from the source in one request. */
  maxGap: 256 * 1024,
  /** Largest single read from a source pack. */
  maxRead: 32 * 1024 * 1024,
  /** Reads started ahead of the one being handled (memory: up to this many times maxRead). */
  readAhead: 2,
  /** Destination packs written at once. */
  packsInFlight: 4,
} as const;

interface Needed {
  readonly id: string;
  readonly loc: BlobLocation;
}

export async function copySnapshots(src: Repository, dst: Repository, opts: CopyOptions = {}): Promise<CopyReport> {
  const checkpointPacks = opts.checkpointPacks ?? COPY_DEFAULTS.checkpointPacks;
  const srcLock = await src.lock('read', 'copy');
  try {
    const dstLock = await dst.lock('write', 'copy');
    try {
      await dst.storage.cleanTemp();
      const srcIndex = await src.reloadIndex();
      const dstIndex = await dst.reloadIndex();
      // The index files from before this copy: only they can name a bad pack
      // that must be dropped. The checkpoints written below may name a
      // repaired pack that came out with a bad pack's name.
      const oldIndexFiles = await dst.indexFiles();
      const records: SnapshotRecord[] = opts.snapshots?.length
        ? await Promise.all(opts.snapshots.map((s) => src.findSnapshot(s)))
        : await src.listSnapshots();
      const dstRecords = new Set((await dst.storage.list('snapshots')).map((n) => n.slice('snapshots/'.length)));

      // 1. Which destination packs can be relied on.
      const dstPacks = new Set((await dst.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)));
      const bad = new Set<string>();
      for (const p of dstIndex.packs.keys()) if (!dstPacks.has(p)) bad.add(p);
      const checked = new Set<string>();
      const present = async (id: string): Promise<boolean> => {
        const loc = dstIndex.get(id);
        if (!loc || bad.has(loc.pack)) return false;
        if (opts.checkDestination && !checked.has(loc.pack)) {
          checked.add(loc.pack);
          const ok = await dst.storage.read(packName(loc.pack)).then(
            (b) => hashHex(b) === loc.pack,
            () => false,
          );
          if (!ok) bad.add(loc.pack);
        }
        return !bad.has(loc.pack);
      };

      const seen = new Set<string>();
      const needed: Needed[] = [];
      const want = async (id: string): Promise<void> => {
        if (seen.has(id)) return;
        seen.add(id);
        const loc = srcIndex.get(id);
        if (!loc) throw new CorruptionError(`blob ${id} is not in the source's index`, { blob: id });
        if (!(await present(id))) needed.push({ id, loc });
      };
      const walk = async (treeId: string): Promise<void> => {
        if (seen.has(treeId)) return;
        await want(treeId);
        for (const n of await src.readTree(treeId)) {
          if (n.subtree !== undefined) await walk(n.subtree);
          for (const c of n.content ?? []) if (c.id !== null) await want(c.id);
        }
      };
      for (const r of records) await walk(r.root.subtree!);
      // Damaged packs go first: they are unusable anyway, and a pack written
      // below may get the same name (the same blobs make the same pack).
      for (const p of bad) if (dstPacks.has(p)) await dst.storage.remove(packName(p));

      // 2. Send them, grouped by source pack in offset order.
      const progress = new ProgressTracker(opts.onProgress);
      progress.bytesTotal = needed.reduce((n, b) => n + b.loc.rawLength, 0);
      progress.filesTotal = needed.length;
      progress.emit(true);
      let bytesSent = 0;
      let pending: IndexedPack[] = [];
      const writer = new PackWriter(
        dst.storage,
        dst.config.packSize,
        (pack) => {
          pending.push(pack);
          bytesSent += pack.size;
        },
        COPY_DEFAULTS.packsInFlight,
      );
      /** Index files this copy wrote (one may have the name, and so the bytes, of an old one). */
      const written = new Set<string>();
      const writeIndex = async (packs: readonly IndexedPack[]): Promise<void> => {
        if (packs.length === 0) return;
        const idx = encodeIndex(packs);
        const name = `index/${hashHex(idx)}`;
        await dst.storage.write(name, idx);
        written.add(name);
        bytesSent += idx.length;
      };
      const byPack = new Map<string, Needed[]>();
      for (const b of needed) {
        let l = byPack.get(b.loc.pack);
        if (!l) byPack.set(b.loc.pack, (l = []));
        l.push(b);
      }
      // The reads, in order: adjacent blobs of one source pack in one range.
      const reads: { pack: string; from: number; end: number; blobs: Needed[] }[] = [];
      for (const [pack, blobs] of byPack) {
        blobs.sort((a, b) => a.loc.offset - b.loc.offset);
        for (let i = 0; i < blobs.length;) {
          const from = blobs[i]!.loc.offset;
          let j = i + 1;
          let end = from + blobs[i]!.loc.length;
          while (j < blobs.length) {
            const next = blobs[j]!.loc;
            if (next.offset - end > COPY_DEFAULTS.maxGap || next.offset + next.length - from > COPY_DEFAULTS.maxRead) break;
            end = Math.max(end, next.offset + next.length);
            j++;
          }
          reads.push({ pack, from, end, blobs: blobs.slice(i, j) });
          i = j;
        }
      }
      // Reads run ahead of the writes (a bucket answers each request after a
      // round trip), up to readAhead ranges; each is handled in order.
      const inFlight: Promise<Buffer>[] = [];
      const start = (k: number): void => {
        const r = reads[k];
        if (!r) return;
        const p = src.storage.readAt(packName(r.pack), r.from, r.end - r.from);
        p.catch(() => undefined); // awaited below, in order; never left unhandled if the copy fails first
        inFlight.push(p);
      };
      for (let k = 0; k < COPY_DEFAULTS.readAhead; k++) start(k);
      for (let k = 0; k < reads.length; k++) {
        const { pack, from, blobs } = reads[k]!;
        const buf = await inFlight.shift()!;
        start(k + COPY_DEFAULTS.readAhead);
        for (const b of blobs) {
          const stored = buf.subarray(b.loc.offset - from, b.loc.offset - from + b.loc.length);
          const raw = src.codec.decode(stored, b.loc.compression, b.loc.rawLength, `blob ${b.id}`);
          if (hashHex(raw) !== b.id)
            throw new CorruptionError(`blob ${b.id} in source pack ${pack} does not match its hash`, { blob: b.id, pack });
          await writer.add(b.loc.type, b.id, stored, b.loc.compression, b.loc.rawLength);
          progress.file(b.loc.rawLength);
          if (pending.length >= checkpointPacks) {
            const done = pending;
            pending = [];
            await writeIndex(done);
          }
        }
      }
      await writer.flush();

      // 3. The last index; index files from before the copy that name bad
      // packs are replaced by ones without them.
      const replaced: string[] = [];
      if (bad.size > 0) {
        for (const name of oldIndexFiles) {
          // Rewritten by this copy with the same bytes: it names only packs this copy wrote or kept.
          if (written.has(name)) continue;
          let packs: IndexedPack[];
          try {
            packs = decodeIndex(await dst.storage.read(name), name);
          } catch {
            continue;
          }
          if (!packs.some((p) => bad.has(p.id))) continue;
          pending.push(...packs.filter((p) => !bad.has(p.id)));
          replaced.push(name);
        }
      }
      await writeIndex(pending);
      for (const name of replaced) if (!written.has(name)) await dst.storage.remove(name);

      // 4. The records, exactly as in the source (their ids are their hashes).
      const copied: string[] = [];
      const had: string[] = [];
      for (const r of records) {
        if (dstRecords.has(r.id)) {
          had.push(r.id);
          continue;
        }
        const bytes = await src.storage.read(`snapshots/${r.id}`);
        decodeSnapshotRecord(r.id, bytes);
        await dst.storage.write(`snapshots/${r.id}`, bytes);
        bytesSent += bytes.length;
        copied.push(r.id);
      }
      progress.emit(true);
      await dst.reloadIndex();
      return {
        copied,
        present: had,
        blobsSent: needed.length,
        rawBytesSent: progress.bytesDone,
        bytesSent,
        packsRepaired: bad.size,
      };
    } finally {
      await dstLock.release();
    }
  } finally {
    await srcLock.release();
  }
}
