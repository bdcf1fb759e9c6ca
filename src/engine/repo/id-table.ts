/**
 * id-table: a compact table of 32-byte blob ids, each with a small fixed
 * payload, for the index and for gc's set of live blobs.
 *
 * Layout: 4,096 buckets chosen by the first 12 bits of the id (BLAKE3 ids
 * are uniform, so buckets fill evenly). A bucket is one Buffer of records
 * (id, then `payloadBytes`): a run sorted by id, then a short unsorted tail
 * of the latest insertions (at most TAIL records), merged into the run when
 * full. A record costs its own bytes plus about 12% slack and no JS object
 * (48 bytes for an index entry instead of about 150 for a Map of hex
 * strings), and there are only 4,096 buffers whatever the count, so the
 * allocator's overhead per buffer does not add up. Lookup searches the run
 * from where the id's next bits place it (seek) and scans the tail; growth
 * copies one bucket, never the whole table, so there is no transient
 * doubling.
 *
 * Not thread-safe, and nothing is ever removed: a table lives as long as the
 * index or the gc run that built it.
 */

export const ID_BYTES = 32;
const BUCKET_BITS = 12;
const BUCKETS = 1 << BUCKET_BITS;
/** Unsorted records a bucket takes before they are merged into its sorted run. */
const TAIL = 32;
/** Buckets whose first buffers share one allocation (2^SLAB_SHIFT). */
const SLAB_SHIFT = 6;
/** No record appended to a bucket (IdTable.append). */
const NONE = 0xffffffff;
/** Positions a bucket's sort keys make room for (a key is the id's first word times this, plus the position). */
const POSITIONS = 2 ** 21;

/** A place in the table: the bucket's buffer and the record's offset there (valid until the next insert). */
export interface RecordRef {
  readonly buf: Buffer;
  readonly at: number;
}

const bucketOf = (id: Buffer): number => (id[0]! << 4) | (id[1]! >>> 4);

/** compareIds orders two records' ids (at `a` in `x`, at `b` in `y`), four bytes at a time. */
export function compareIds(x: Buffer, a: number, y: Buffer, b: number): number {
  for (let k = 0; k < ID_BYTES; k += 4) {
    const p = x.readUInt32BE(a + k);
    const q = y.readUInt32BE(b + k);
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/** cmpId compares the ids at `a` in `x` and at `b` in `y`, known to share their first byte (the bucket's). */
function cmpId(x: Buffer, a: number, y: Buffer, b: number): number {
  for (let k = 1; k < ID_BYTES; k++) {
    const c = x[a + k]! - y[b + k]!;
    if (c !== 0) return c;
  }
  return 0;
}

export class IdTable {
  private readonly buckets: (Buffer | null)[] = new Array<Buffer | null>(BUCKETS).fill(null);
  private readonly slabs: (Buffer | null)[] = new Array<Buffer | null>(BUCKETS >>> SLAB_SHIFT).fill(null);
  /** Records of each bucket's sorted run, and of its unsorted tail after it. */
  private readonly sorted = new Uint32Array(BUCKETS);
  private readonly tail = new Uint32Array(BUCKETS);
  private count = 0;
  readonly recordBytes: number;

  constructor(readonly payloadBytes: number) {
    this.recordBytes = ID_BYTES + payloadBytes;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the buckets (records and slack). */
  get allocatedBytes(): number {
    let n = 0;
    for (const b of this.buckets) if (b) n += b.length;
    return n;
  }

  /**
   * seek returns the index in `bucket`'s sorted run of the id that is the 32
   * bytes at `at` in `src`, or -1. Ids are uniform, so the record sits near
   * the place its next 20 bits give in the run: the search starts there and
   * widens by doubling steps until the id is bracketed, then halves. It
   * reads a few neighbouring records where a plain binary search read
   * about log2(n) scattered ones.
   */
  private seek(bucket: number, src: Buffer, at: number): number {
    const buf = this.buckets[bucket];
    const n = this.sorted[bucket]!;
    if (!buf || n === 0) return -1;
    const rec = this.recordBytes;
    const bits = ((src[at + 1]! & 0x0f) << 16) | (src[at + 2]! << 8) | src[at + 3]!;
    const guess = Math.floor((bits * n) / 0x100000);
    let c = cmpId(src, at, buf, guess * rec);
    if (c === 0) return guess;
    // The id lies in [lo, hi) of the run.
    let lo: number;
    let hi: number;
    if (c > 0) {
      lo = guess + 1;
      hi = lo;
      for (let step = 1; hi < n; step <<= 1) {
        c = cmpId(src, at, buf, hi * rec);
        if (c === 0) return hi;
        if (c < 0) break;
        lo = hi + 1;
        hi = Math.min(n, hi + step);
      }
    } else {
      hi = guess;
      lo = hi;
      for (let step = 1; lo > 0; step <<= 1) {
        lo = Math.max(0, hi - step);
        c = cmpId(src, at, buf, lo * rec);
        if (c === 0) return lo;
        if (c > 0) {
          lo++;
          break;
        }
        hi = lo;
      }
    }
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      c = cmpId(src, at, buf, mid * rec);
      if (c === 0) return mid;
      if (c < 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }

  /** search returns the index of `id` in its bucket, or -1. */
  private search(bucket: number, id: Buffer): number {
    if (this.appended !== null) throw new Error('id table has appended records not yet settled');
    const buf = this.buckets[bucket];
    if (!buf) return -1;
    const found = this.seek(bucket, id, 0);
    if (found >= 0) return found;
    const rec = this.recordBytes;
    const key = id.readUInt32BE(0);
    const end = this.sorted[bucket]! + this.tail[bucket]!;
    for (let i = this.sorted[bucket]!; i < end; i++) {
      if (buf.readUInt32BE(i * rec) === key && compareIds(id, 0, buf, i * rec) === 0) return i;
    }
    return -1;
  }

  /** merge sorts a bucket's tail into its run (backwards, in place, through a copy of the tail). */
  private merge(bucket: number): void {
    const t = this.tail[bucket]!;
    if (t === 0) return;
    const buf = this.buckets[bucket]!;
    const rec = this.recordBytes;
    const s = this.sorted[bucket]!;
    const tail = Buffer.from(buf.subarray(s * rec, (s + t) * rec));
    const order = Array.from({ length: t }, (_, i) => i).sort((a, b) => compareIds(tail, a * rec, tail, b * rec));
    let i = s - 1; // last of the run
    let j = t - 1; // last of the sorted tail
    for (let out = s + t - 1; j >= 0; out--) {
      const tj = order[j]! * rec;
      if (i >= 0 && compareIds(buf, i * rec, tail, tj) > 0) {
        buf.copy(buf, out * rec, i * rec, (i + 1) * rec);
        i--;
      } else {
        tail.copy(buf, out * rec, tj, tj + rec);
        j--;
      }
    }
    this.sorted[bucket] = s + t;
    this.tail[bucket] = 0;
  }

  /** find returns where `id` (32 bytes) is recorded, or null. */
  find(id: Buffer): RecordRef | null {
    const bucket = bucketOf(id);
    const i = this.search(bucket, id);
    return i < 0 ? null : { buf: this.buckets[bucket]!, at: i * this.recordBytes };
  }

  has(id: Buffer): boolean {
    return this.search(bucketOf(id), id) >= 0;
  }

  /**
   * insert records `id` unless present. It returns the new record, whose
   * payload (zeroed) the caller fills at `at + ID_BYTES` before the next
   * insert, or null when the id was there already (its record is left as it was).
   */
  insert(id: Buffer): RecordRef | null {
    if (id.length !== ID_BYTES) throw new Error(`blob id must be ${ID_BYTES} bytes, got ${id.length}`);
    const bucket = bucketOf(id);
    if (this.search(bucket, id) >= 0) return null;
    if (this.tail[bucket]! >= TAIL) this.merge(bucket);
    const buf = this.room(bucket, 3);
    const at = (this.sorted[bucket]! + this.tail[bucket]!) * this.recordBytes;
    // Byte loops: for 32 bytes, copy() and fill() cost more in argument checks than in copying.
    for (let k = 0; k < ID_BYTES; k++) buf[at + k] = id[k]!;
    for (let k = at + ID_BYTES; k < at + this.recordBytes; k++) buf[k] = 0;
    this.tail[bucket] = this.tail[bucket]! + 1;
    this.count++;
    return { buf, at };
  }

  /**
   * room returns `bucket`'s buffer with space for one more record, grown
   * (by an eighth for inserts, `1 / 2^shift` of its records) when full.
   */
  private room(bucket: number, shift: number): Buffer {
    const rec = this.recordBytes;
    const n = this.sorted[bucket]! + this.tail[bucket]!;
    const buf = this.buckets[bucket];
    if (buf && (n + 1) * rec <= buf.length) return buf;
    const records = n + Math.max(TAIL, n >>> shift);
    const grown = buf ? Buffer.allocUnsafeSlow(records * rec) : this.firstBuffer(bucket);
    if (buf) buf.copy(grown, 0, 0, n * rec);
    this.buckets[bucket] = grown;
    return grown;
  }

  /**
   * By bucket, while records are appended: the position of its first
   * appended record (NONE: none appended). Null when every record is settled.
   */
  private appended: Uint32Array | null = null;
  /** The buffer of the record append() last wrote. */
  appendedBuf: Buffer | null = null;

  /**
   * append adds the id that is the 32 bytes at `at` in `src` without
   * looking for it, for loading many records at once (an index file): a
   * search per record cost as much as the rest of the load. It returns the
   * offset of the new record in appendedBuf; the caller fills its payload
   * (zeroed) at `offset + ID_BYTES` before the next append. Until settle(),
   * the table may hold an id more than once and cannot be searched, listed
   * or inserted into (those throw); size counts every appended record.
   */
  append(src: Buffer, at: number): number {
    const bucket = (src[at]! << 4) | (src[at + 1]! >>> 4);
    let first = this.appended;
    if (first === null) this.appended = first = new Uint32Array(BUCKETS).fill(NONE);
    const n = this.sorted[bucket]! + this.tail[bucket]!;
    if (first[bucket] === NONE) first[bucket] = n;
    // Appends come by the thousand: grow by a quarter, so fewer copies.
    const buf = this.room(bucket, 2);
    const rec = this.recordBytes;
    const out = n * rec;
    for (let k = 0; k < ID_BYTES; k++) buf[out + k] = src[at + k]!;
    for (let k = out + ID_BYTES; k < out + rec; k++) buf[k] = 0;
    this.tail[bucket] = this.tail[bucket]! + 1;
    this.count++;
    this.appendedBuf = buf;
    return out;
  }

  /**
   * settle sorts each bucket that was appended to and drops the records of
   * ids held more than once, keeping the earliest: a record inserted
   * before the appends, else the first appended. `kept` is called with
   * each appended record that stays (in id order within a bucket).
   *
   * A bucket's records are ordered by their first four bytes and their
   * position together, as numbers (one typed-array sort, no comparator
   * call per pair); only records whose first four bytes are alike (about
   * one pair in a million here, and duplicates) are compared whole.
   */
  settle(kept?: (buf: Buffer, at: number) => void): void {
    const first = this.appended;
    if (first === null) return;
    this.appended = null;
    this.appendedBuf = null;
    const rec = this.recordBytes;
    let keys = new Float64Array(0);
    let copy = Buffer.alloc(0);
    for (let b = 0; b < BUCKETS; b++) {
      const from = first[b]!;
      if (from === NONE) continue;
      const buf = this.buckets[b]!;
      const n = this.sorted[b]! + this.tail[b]!;
      if (n > POSITIONS) throw new Error(`more than ${POSITIONS} records in one bucket`);
      if (keys.length < n) keys = new Float64Array(Math.max(n, 2 * keys.length));
      if (copy.length < n * rec) copy = Buffer.allocUnsafeSlow(Math.max(n * rec, 2 * copy.length));
      buf.copy(copy, 0, 0, n * rec);
      const order = keys.subarray(0, n);
      for (let i = 0; i < n; i++) order[i] = copy.readUInt32BE(i * rec) * POSITIONS + i;
      order.sort();
      let out = 0;
      let last = -1; // position in `copy` of the last record kept
      for (let i = 0; i < n;) {
        // The records from i to j share their first four bytes.
        const word = Math.floor(order[i]! / POSITIONS);
        let j = i + 1;
        while (j < n && Math.floor(order[j]! / POSITIONS) === word) j++;
        if (j - i > 1) {
          const same = Array.from(order.subarray(i, j), (k) => k - word * POSITIONS);
          same.sort((p, q) => compareIds(copy, p * rec, copy, q * rec) || p - q);
          for (let k = i; k < j; k++) order[k] = word * POSITIONS + same[k - i]!;
        }
        for (; i < j; i++) {
          const p = order[i]! - word * POSITIONS;
          if (last >= 0 && compareIds(copy, last * rec, copy, p * rec) === 0) continue;
          last = p;
          copy.copy(buf, out * rec, p * rec, (p + 1) * rec);
          if (p >= from && kept) kept(buf, out * rec);
          out++;
        }
      }
      this.count -= n - out;
      this.sorted[b] = out;
      this.tail[b] = 0;
    }
  }

  /**
   * firstBuffer is a bucket's first buffer (TAIL records), a slice of a slab
   * shared by SLAB_BUCKETS neighbouring buckets: a buffer of its own per
   * bucket cost thousands of allocations (and the collections their
   * external memory triggers) each time an index was loaded. A slab lives
   * as long as the table, so at most TAIL records per bucket stay unused
   * once a bucket has grown out of its slice.
   */
  private firstBuffer(bucket: number): Buffer {
    const rec = this.recordBytes;
    const s = bucket >>> SLAB_SHIFT;
    let slab = this.slabs[s];
    if (!slab) this.slabs[s] = slab = Buffer.allocUnsafeSlow((TAIL * rec) << SLAB_SHIFT);
    const at = (bucket & ((1 << SLAB_SHIFT) - 1)) * TAIL * rec;
    return slab.subarray(at, at + TAIL * rec);
  }

  /** records yields every record, in id order. The table must not change meanwhile. */
  *records(): IterableIterator<RecordRef> {
    if (this.appended !== null) throw new Error('id table has appended records not yet settled');
    const rec = this.recordBytes;
    for (let b = 0; b < BUCKETS; b++) {
      const buf = this.buckets[b];
      if (!buf) continue;
      this.merge(b);
      const end = this.sorted[b]! * rec;
      for (let at = 0; at < end; at += rec) yield { buf, at };
    }
  }

  /** forEach visits every record, in id order. The table must not change meanwhile. */
  forEach(fn: (buf: Buffer, at: number) => void): void {
    for (const { buf, at } of this.records()) fn(buf, at);
  }

  /** By bucket: the number seal() gave its first record; null when not sealed. */
  private ordinalBase: Uint32Array | null = null;
  private sealedCount = -1;
  /** Where the last ordinal() found its record (valid until the next insert). */
  foundBuf: Buffer | null = null;
  foundAt = 0;

  /**
   * seal sorts every bucket's tail into its run and numbers the records in
   * id order, so that ordinal() gives each id a dense number (0 … size-1),
   * for a caller that keeps a byte per record instead of a set of ids. An
   * insert afterwards voids the numbering (ordinal() then throws).
   */
  seal(): void {
    if (this.appended !== null) throw new Error('id table has appended records not yet settled');
    const base = new Uint32Array(BUCKETS);
    let n = 0;
    for (let b = 0; b < BUCKETS; b++) {
      base[b] = n;
      if (!this.buckets[b]) continue;
      this.merge(b);
      n += this.sorted[b]!;
    }
    this.ordinalBase = base;
    this.sealedCount = this.count;
  }

  /**
   * ordinal is the number seal() gave the id that is the 32 bytes at `at`
   * in `src`, or -1 when the table does not hold it; its record is left in
   * foundBuf and foundAt. The search compares bytes directly, without a
   * copy of the id.
   */
  ordinal(src: Buffer, at: number): number {
    const base = this.ordinalBase;
    if (!base || this.sealedCount !== this.count) throw new Error('id table changed since it was sealed');
    const bucket = (src[at]! << 4) | (src[at + 1]! >>> 4);
    const i = this.seek(bucket, src, at);
    if (i < 0) return -1;
    this.foundBuf = this.buckets[bucket]!;
    this.foundAt = i * this.recordBytes;
    return base[bucket]! + i;
  }
}

/** IdSet is a set of blob ids (hex), 32 bytes each plus slack. */
export class IdSet {
  private readonly table = new IdTable(0);
  private readonly scratch = Buffer.alloc(ID_BYTES);

  get size(): number {
    return this.table.size;
  }

  /** add adds `id` and tells whether it was new. */
  add(id: string): boolean {
    const b = idBytes(id, this.scratch);
    if (!b) throw new Error(`bad blob id ${JSON.stringify(id)}`);
    return this.table.insert(b) !== null;
  }

  has(id: string): boolean {
    const b = idBytes(id, this.scratch);
    return b !== null && this.table.has(b);
  }

  /** forEach visits every id (hex), in id order. */
  forEach(fn: (id: string) => void): void {
    this.table.forEach((buf, at) => fn(buf.toString('hex', at, at + ID_BYTES)));
  }
}

/**
 * idBytes writes a 64-digit hex id into `into` (a 32-byte scratch buffer)
 * and returns it, or null when `id` is not 64 hex digits (no blob has it).
 */
export function idBytes(id: string, into: Buffer): Buffer | null {
  if (id.length !== 2 * ID_BYTES || into.write(id, 0, ID_BYTES, 'hex') !== ID_BYTES) return null;
  return into;
}
