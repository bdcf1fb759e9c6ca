/**
 * id-run: IdTable records moved out of memory into a file, for an index
 * larger than the memory it may take (master-index.ts spills its table into
 * runs past a number of records).
 *
 * A run is the records of one table in id order, in a file that was
 * unlinked as soon as it was opened: it lives as long as its descriptor,
 * so nothing is left behind by a crash or a forgotten close. Memory per
 * record: a Bloom filter of 10–20 bits (six probes; about 1% false
 * positives at worst) that answers most lookups of absent ids without a
 * read, and the first 8 bytes of the first id of each block of 85 records
 * (under 0.1 byte a record). A lookup that passes the filter reads one
 * 4 KiB block (pread, from the page cache once read) and searches it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SELF_START } from '../util/process-identity.js';
import { ID_BYTES, type RecordRef, compareIds } from './id-table.js';

/** Bytes a block of records takes at most: one page. */
const BLOCK_BYTES = 4096;
/** Bytes written to the file at a time when a run is made or read whole. */
const IO_BYTES = 1 << 20;

/** Closes the file of a run that was dropped without close(). */
const unclosed = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    // Closed already.
  }
});

const word = (b: Buffer, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

export class IdRun {
  /** Records per block. */
  private readonly per: number;
  /** Per block, the first 8 bytes of its first id, as two big-endian words. */
  private readonly fences: Uint32Array;
  private readonly bloom: Uint32Array;
  private readonly bloomMask: number;
  /** The block last read, and its number (-1: none). */
  private readonly block: Buffer;
  private blockNo = -1;
  private fd: number;

  private constructor(
    fd: number,
    readonly recordBytes: number,
    readonly count: number,
    fences: Uint32Array,
    bloom: Uint32Array,
  ) {
    this.fd = fd;
    unclosed.register(this, fd, this);
    this.per = Math.floor(BLOCK_BYTES / recordBytes);
    this.fences = fences;
    this.bloom = bloom;
    this.bloomMask = bloom.length * 32 - 1;
    this.block = Buffer.allocUnsafeSlow(this.per * recordBytes);
  }

  /**
   * write puts `count` records, given in id order, into a new run in `dir`.
   * The file is unlinked at once; its space is freed when the run is closed
   * (or the process ends).
   */
  static write(dir: string, recordBytes: number, count: number, records: Iterable<RecordRef>): IdRun {
    fs.mkdirSync(dir, { recursive: true });
    // Named like the storage's temporary files, so cleanTemp knows whose it is.
    const file = path.join(dir, `${process.pid}-${SELF_START}-index-${randomBytes(8).toString('hex')}.tmp`);
    const fd = fs.openSync(file, 'wx+', 0o600);
    fs.unlinkSync(file);
    try {
      const per = Math.floor(BLOCK_BYTES / recordBytes);
      const fences = new Uint32Array(2 * Math.ceil(count / per));
      // A power of two of at least 10 bits a record, so that a probe is a mask.
      let bits = 1024;
      while (bits < 10 * count) bits *= 2;
      const bloom = new Uint32Array(bits / 32);
      const mask = bits - 1;
      const out = Buffer.allocUnsafe(Math.floor(IO_BYTES / recordBytes) * recordBytes);
      let used = 0;
      let pos = 0;
      let i = 0;
      for (const { buf, at } of records) {
        if (i >= count) throw new Error(`more than ${count} records for an index run`);
        if (i % per === 0) {
          fences[2 * (i / per)] = buf.readUInt32BE(at);
          fences[2 * (i / per) + 1] = buf.readUInt32BE(at + 4);
        }
        for (let o = 8; o < ID_BYTES; o += 4) {
          const bit = word(buf, at + o) & mask;
          bloom[bit >>> 5] = bloom[bit >>> 5]! | (1 << (bit & 31));
        }
        buf.copy(out, used, at, at + recordBytes);
        used += recordBytes;
        if (used === out.length) {
          pos += writeAll(fd, out, used, pos);
          used = 0;
        }
        i++;
      }
      if (i !== count) throw new Error(`${i} records for an index run of ${count}`);
      if (used > 0) writeAll(fd, out, used, pos);
      return new IdRun(fd, recordBytes, count, fences, bloom);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Bytes of memory the run holds (filter, fences and its block). */
  get memoryBytes(): number {
    return this.bloom.byteLength + this.fences.byteLength + this.block.length;
  }

  /**
   * find returns the index in the run of the id that is the 32 bytes at
   * `at` in `src`, or -1. On success the record is in `foundBuf` at
   * `foundAt` (valid until the next find).
   */
  find(src: Buffer, at: number): number {
    const mask = this.bloomMask;
    for (let o = 8; o < ID_BYTES; o += 4) {
      const bit = word(src, at + o) & mask;
      if ((this.bloom[bit >>> 5]! & (1 << (bit & 31))) === 0) return -1;
    }
    const hi = src.readUInt32BE(at);
    const lo = src.readUInt32BE(at + 4);
    // The last block whose first id's prefix is at most the id's.
    let a = 0;
    let b = this.fences.length / 2;
    while (a < b) {
      const m = (a + b) >>> 1;
      const fh = this.fences[2 * m]!;
      if (fh < hi || (fh === hi && this.fences[2 * m + 1]! <= lo)) a = m + 1;
      else b = m;
    }
    const blk = a - 1;
    if (blk < 0) return -1;
    // Blocks that start with the id's very prefix may have the id in the one before (ids that share
    // 8 bytes: about never with BLAKE3, but then they may fill several blocks).
    for (let k = blk; k >= 0; k--) {
      const i = this.searchBlock(k, src, at);
      if (i >= 0) return i;
      if (this.fences[2 * k] !== hi || this.fences[2 * k + 1] !== lo) break;
    }
    return -1;
  }

  /** The buffer and offset of the record the last successful find() found. */
  foundBuf: Buffer | null = null;
  foundAt = 0;

  private searchBlock(blk: number, src: Buffer, at: number): number {
    const rec = this.recordBytes;
    const first = blk * this.per;
    const n = Math.min(this.per, this.count - first);
    if (this.blockNo !== blk) {
      const want = n * rec;
      let got = 0;
      while (got < want) {
        const r = fs.readSync(this.fd, this.block, got, want - got, first * rec + got);
        if (r === 0) throw new Error('index run file ended early');
        got += r;
      }
      this.blockNo = blk;
    }
    const buf = this.block;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareIds(src, at, buf, mid * rec);
      if (c === 0) {
        this.foundBuf = buf;
        this.foundAt = mid * rec;
        return first + mid;
      }
      if (c < 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }

  /** records yields every record, in id order (each valid until the next is asked for). */
  *records(): IterableIterator<RecordRef> {
    const rec = this.recordBytes;
    const buf = Buffer.allocUnsafe(Math.floor(IO_BYTES / rec) * rec);
    const total = this.count * rec;
    for (let pos = 0; pos < total;) {
      const want = Math.min(buf.length, total - pos);
      let got = 0;
      while (got < want) {
        const r = fs.readSync(this.fd, buf, got, want - got, pos + got);
        if (r === 0) throw new Error('index run file ended early');
        got += r;
      }
      for (let at = 0; at < want; at += rec) yield { buf, at };
      pos += want;
    }
  }

  /** close frees the run's file. */
  close(): void {
    if (this.fd < 0) return;
    unclosed.unregister(this);
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function writeAll(fd: number, buf: Buffer, n: number, pos: number): number {
  let done = 0;
  while (done < n) done += fs.writeSync(fd, buf, done, n - done, pos + done);
  return n;
}
