/**
 * master-index: the in-memory map from blob id to location, built from all
 * index files and extended as packs are written. A blob may be listed more
 * than once (GC writes its new index before removing old ones); the first
 * location wins, and every listed copy is valid until its pack is deleted.
 *
 * Memory: entries live in an IdTable (id-table.ts) as 48-byte records (id,
 * pack number with type and compression bits, offset, length, raw length)
 * plus about 12% slack, so about 54 bytes per blob. Given a directory to
 * spill to, the table holds at most `memoryRecords` (default 2^20: 57 MB);
 * when it is full its records move to a run in a file (id-run.ts), which
 * keeps about 2–3 bytes a blob in memory. So a million blobs (≈250 GB of
 * data in the default 256 KiB chunks, or a million small files) take
 * 54 MB, and five million about 70 MB instead of 270 MB; a lookup of a
 * spilled blob reads a 4 KiB block. Packs are listed once each, by number.
 */
import type { BlobLocation, BlobType, Compression } from '../format/blob.js';
import type { IndexedPack, RawIndexedPack } from '../format/index-format.js';
import { ENTRY_BYTES } from '../format/pack-format.js';
import { IdRun } from './id-run.js';
import { ID_BYTES, IdTable, idBytes } from './id-table.js';

export interface PackInfo {
  readonly size: number;
  readonly blobs: number;
}

/** Payload: pack number | type << 30 | compression << 31, offset, length, raw length (u32 each). */
const PAYLOAD_BYTES = 16;
const MAX_PACKS = 1 << 30;
const U32 = 0xffffffff;

/** A blob's location as locateRaw fills it: its pack by number (packIdOf), no string or object made per blob. */
export interface RawLocation {
  pack: number;
  type: number;
  compression: number;
  offset: number;
  length: number;
  rawLength: number;
}

export interface MasterIndexOptions {
  /** Where runs of spilled records go; none: every record stays in memory. */
  readonly spillDir?: string;
  /** Records the in-memory table holds before they are spilled (default 2^20). */
  readonly memoryRecords?: number;
}

/** A record found: its buffer and offset (valid until the next lookup or insert). */
interface Found {
  buf: Buffer;
  at: number;
}

export class MasterIndex {
  private table = new IdTable(PAYLOAD_BYTES);
  /** Spilled records, oldest first, and the records they hold together. */
  private readonly runs: IdRun[] = [];
  private spilled = 0;
  private spillDir: string | null;
  /** Why spilling stopped (the records then stay in memory), or null. */
  spillError: Error | null = null;
  private readonly memoryRecords: number;
  private readonly found: Found = { buf: Buffer.alloc(0), at: 0 };
  private readonly packIds: string[] = [];
  private readonly packNumbers = new Map<string, number>();
  /** By pack number: blobs whose (first) location is in that pack. */
  private readonly located: number[] = [];
  private readonly scratch = Buffer.alloc(ID_BYTES);
  readonly packs = new Map<string, PackInfo>();

  constructor(opts: MasterIndexOptions = {}) {
    this.spillDir = opts.spillDir ?? null;
    this.memoryRecords = opts.memoryRecords ?? 1 << 20;
    if (!(this.memoryRecords >= 1)) throw new Error(`memoryRecords must be at least 1, got ${this.memoryRecords}`);
  }

  get blobCount(): number {
    this.settle();
    return this.spilled + this.table.size;
  }

  /** Blobs whose records were moved to runs in files. */
  get spilledBlobs(): number {
    return this.spilled;
  }

  /** Bytes of memory the blob entries take (records and slack, and what the runs keep). */
  get allocatedBytes(): number {
    this.settle();
    let n = this.table.allocatedBytes;
    for (const r of this.runs) n += r.memoryBytes;
    return n;
  }

  /** close frees the runs' files now (else when the index is collected); the index is not used afterwards. */
  close(): void {
    for (const r of this.runs) r.close();
  }

  add(pack: IndexedPack): void {
    this.settle();
    const number = this.packNumber(pack.id, pack.size, pack.blobs.length);
    for (const b of pack.blobs) {
      if (b.offset > U32 || b.length > U32 || b.rawLength > U32) throw new Error(`blob ${b.id}: offset or length beyond 4 GiB`);
      const id = idBytes(b.id, this.scratch);
      if (!id) throw new Error(`bad blob id ${JSON.stringify(b.id)}`);
      this.put(id, number, b.type, b.compression, b.offset, b.length, b.rawLength);
    }
  }

  /**
   * addRaw is add() for a pack of an index file as rawIndexPacks yields it
   * (entries checked, as stored): the same entries, copied without making
   * an object and a hex string of each (loading the index is on the path
   * of every snapshot).
   *
   * While every record fits in memory, entries are appended to the table
   * without a search each (IdTable.append), and sorted, rid of repeated
   * blobs and counted in their packs once, by settle() before the index is
   * next read. Past that, each is put() as add() does, spilling as needed.
   */
  addRaw(pack: RawIndexedPack): void {
    const number = this.packNumber(pack.id, pack.size, pack.count);
    const e = pack.entries;
    for (let at = 0; at < pack.count * ENTRY_BYTES; at += ENTRY_BYTES) {
      if (this.runs.length === 0 && (this.spillDir === null || this.table.size < this.memoryRecords)) {
        const r = this.table.append(e, at + 16) + ID_BYTES;
        const buf = this.table.appendedBuf!;
        buf.writeUInt32LE((number | (e[at]! << 30) | (e[at + 1]! << 31)) >>> 0, r);
        for (let k = 4; k < PAYLOAD_BYTES; k++) buf[r + k] = e[at + k]!;
        this.appending = true;
        continue;
      }
      this.settle();
      for (let k = 0; k < ID_BYTES; k++) this.scratch[k] = e[at + 16 + k]!;
      this.put(this.scratch, number, e[at]!, e[at + 1]!, e.readUInt32LE(at + 4), e.readUInt32LE(at + 8), e.readUInt32LE(at + 12));
    }
  }

  /** Whether the table holds records addRaw appended and settle() has not yet sorted. */
  private appending = false;

  /** settle sorts what addRaw appended, keeps each blob's first location, and counts the kept ones in their packs. */
  private settle(): void {
    if (!this.appending) return;
    this.appending = false;
    this.table.settle((buf, at) => this.located[buf.readUInt32LE(at + ID_BYTES) & (MAX_PACKS - 1)]!++);
  }

  /** packNumber lists a pack (once) and returns its number. */
  private packNumber(id: string, size: number, blobs: number): number {
    this.packs.set(id, { size, blobs });
    let number = this.packNumbers.get(id);
    if (number === undefined) {
      number = this.packIds.length;
      if (number >= MAX_PACKS) throw new Error(`more than ${MAX_PACKS} packs`);
      this.packIds.push(id);
      this.packNumbers.set(id, number);
      this.located.push(0);
    }
    return number;
  }

  /** put records a blob's location unless the blob is listed already (the first location wins). */
  private put(id: Buffer, number: number, type: number, compression: number, offset: number, length: number, rawLength: number): void {
    if (this.inRuns(id, 0) >= 0) return;
    if (this.table.size >= this.memoryRecords && this.spillDir !== null && !this.table.has(id)) this.spill(this.spillDir);
    const rec = this.table.insert(id);
    if (!rec) return;
    this.located[number]!++;
    const at = rec.at + ID_BYTES;
    rec.buf.writeUInt32LE((number | (type << 30) | (compression << 31)) >>> 0, at);
    rec.buf.writeUInt32LE(offset, at + 4);
    rec.buf.writeUInt32LE(length, at + 8);
    rec.buf.writeUInt32LE(rawLength, at + 12);
  }

  /**
   * spill moves the table's records to a new run and starts an empty table.
   * When the run cannot be written (a full disk, a read-only one), the
   * records stay in memory from then on: memory grows as it did before
   * runs existed, but the operation (a gc freeing space, a restore) goes on.
   */
  private spill(dir: string): void {
    let run: IdRun;
    try {
      run = IdRun.write(dir, this.table.recordBytes, this.table.size, this.table.records());
    } catch (err) {
      this.spillError = err instanceof Error ? err : new Error(String(err));
      this.spillDir = null;
      return;
    }
    this.runs.push(run);
    this.spilled += this.table.size;
    this.table = new IdTable(PAYLOAD_BYTES);
  }

  /**
   * inRuns returns the number among the spilled records (runs in order) of
   * the id that is the 32 bytes at `at` in `src`, with its record in
   * this.found, or -1 when no run holds it.
   */
  private inRuns(src: Buffer, at: number): number {
    let base = 0;
    for (const run of this.runs) {
      const i = run.find(src, at);
      if (i >= 0) {
        this.found.buf = run.foundBuf!;
        this.found.at = run.foundAt;
        return base + i;
      }
      base += run.count;
    }
    return -1;
  }

  /** lookup finds the record of the 32-byte `id`, in the table or a run. */
  private lookup(id: Buffer): Found | null {
    this.settle();
    const rec = this.table.find(id);
    if (rec) return rec;
    return this.runs.length > 0 && this.inRuns(id, 0) >= 0 ? this.found : null;
  }

  private location(buf: Buffer, at: number): BlobLocation {
    const word = buf.readUInt32LE(at + ID_BYTES);
    return {
      type: ((word >>> 30) & 1) as BlobType,
      compression: (word >>> 31) as Compression,
      pack: this.packIds[word & (MAX_PACKS - 1)]!,
      offset: buf.readUInt32LE(at + ID_BYTES + 4),
      length: buf.readUInt32LE(at + ID_BYTES + 8),
      rawLength: buf.readUInt32LE(at + ID_BYTES + 12),
    };
  }

  /** locatedIn counts the blobs whose location (the first listed) is in pack `packId`. */
  locatedIn(packId: string): number {
    this.settle();
    const n = this.packNumbers.get(packId);
    return n === undefined ? 0 : this.located[n]!;
  }

  get(id: string): BlobLocation | undefined {
    const b = idBytes(id, this.scratch);
    const rec = b && this.lookup(b);
    return rec ? this.location(rec.buf, rec.at) : undefined;
  }

  has(id: string): boolean {
    this.settle();
    const b = idBytes(id, this.scratch);
    return b !== null && (this.table.has(b) || (this.runs.length > 0 && this.inRuns(b, 0) >= 0));
  }

  /**
   * locateRaw fills `out` with the (first) location of the blob whose id is
   * the 32 bytes `id`, and tells whether there is one: get() for callers
   * that look up every blob of a repository (gc).
   */
  locateRaw(id: Buffer, out: RawLocation): boolean {
    const rec = this.lookup(id);
    if (!rec) return false;
    const { buf, at } = rec;
    const word = buf.readUInt32LE(at + ID_BYTES);
    out.pack = word & (MAX_PACKS - 1);
    out.type = (word >>> 30) & 1;
    out.compression = word >>> 31;
    out.offset = buf.readUInt32LE(at + ID_BYTES + 4);
    out.length = buf.readUInt32LE(at + ID_BYTES + 8);
    out.rawLength = buf.readUInt32LE(at + ID_BYTES + 12);
    return true;
  }

  /** seal numbers the blobs for locateSealed (IdTable.seal); adding to the index afterwards voids it. */
  seal(): void {
    this.settle();
    this.table.seal();
  }

  /**
   * locateSealed is locateRaw for the id that is the 32 bytes at `at` in
   * `src`, on a sealed index: it returns the blob's number (0 … blobCount-1),
   * or -1 when the index does not list it.
   */
  locateSealed(src: Buffer, at: number, out: RawLocation): number {
    this.settle();
    let n = this.table.ordinal(src, at);
    let buf: Buffer;
    let rec: number;
    if (n >= 0) {
      n += this.spilled;
      buf = this.table.foundBuf!;
      rec = this.table.foundAt + ID_BYTES;
    } else {
      n = this.runs.length > 0 ? this.inRuns(src, at) : -1;
      if (n < 0) return -1;
      buf = this.found.buf;
      rec = this.found.at + ID_BYTES;
    }
    const word = buf.readUInt32LE(rec);
    out.pack = word & (MAX_PACKS - 1);
    out.type = (word >>> 30) & 1;
    out.compression = word >>> 31;
    out.offset = buf.readUInt32LE(rec + 4);
    out.length = buf.readUInt32LE(rec + 8);
    out.rawLength = buf.readUInt32LE(rec + 12);
    return n;
  }

  /** packIdOf is the id of the pack numbered `number` (a RawLocation's pack). */
  packIdOf(number: number): string {
    const id = this.packIds[number];
    if (id === undefined) throw new Error(`no pack numbered ${number}`);
    return id;
  }

  /** packNumberOf is the number of pack `packId` (as in a RawLocation), or -1 when no index lists it. */
  packNumberOf(packId: string): number {
    return this.packNumbers.get(packId) ?? -1;
  }

  /** entries lists every blob once (in id order within each run and within the table). The index must not change meanwhile. */
  *entries(): IterableIterator<[string, BlobLocation]> {
    this.settle();
    for (const run of this.runs) {
      for (const { buf, at } of run.records()) yield [buf.toString('hex', at, at + ID_BYTES), this.location(buf, at)];
    }
    for (const { buf, at } of this.table.records()) yield [buf.toString('hex', at, at + ID_BYTES), this.location(buf, at)];
  }
}

/** packName is the storage name of a pack. */
export function packName(id: string): string {
  return `packs/${id.slice(0, 2)}/${id}`;
}
