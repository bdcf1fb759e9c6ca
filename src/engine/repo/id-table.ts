/**
 * id-table: a compact table of 32-byte blob ids, each with a small fixed
 * payload, for the index and for gc's set of live blobs.
 *
 * Layout: 65,536 buckets chosen by the first two bytes of the id (BLAKE3 ids
 * are uniform, so buckets fill evenly); each bucket is one Buffer of
 * records (id, then `payloadBytes`), sorted by id, grown by an eighth when
 * full. A record costs its own bytes plus about 12% slack, and no JS object:
 * 48 bytes for an index entry instead of about 150 for a Map of hex strings.
 * Lookup is a binary search in one bucket; insertion moves the bucket's tail
 * (a few KiB even at tens of millions of ids), and growth copies one bucket,
 * never the whole table, so there is no transient doubling.
 *
 * Not thread-safe, and nothing is ever removed: a table lives as long as the
 * index or the gc run that built it.
 */

export const ID_BYTES = 32;
const BUCKET_BITS = 16;
const BUCKETS = 1 << BUCKET_BITS;
/** Records of a bucket's first allocation. */
const FIRST_RECORDS = 4;

/** A place in the table: the bucket's buffer and the record's offset there. */
export interface RecordRef {
  readonly buf: Buffer;
  readonly at: number;
}

/** compareTail compares `id` with the record at `at` past their first 6 bytes (the bucket's prefix and the word already compared). */
function compareTail(id: Buffer, buf: Buffer, at: number): number {
  for (let k = 6; k < ID_BYTES; k += 2) {
    const a = id.readUInt16BE(k);
    const b = buf.readUInt16BE(at + k);
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

export class IdTable {
  private readonly buckets: (Buffer | null)[] = new Array<Buffer | null>(BUCKETS).fill(null);
  private readonly counts = new Uint32Array(BUCKETS);
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
   * search returns the index of `id` in its bucket, or -(insertion point) - 1.
   * Ids are random: the 4 bytes after the bucket's prefix almost always
   * decide, so most steps compare two numbers, not two buffers.
   */
  private search(bucket: number, id: Buffer): number {
    const buf = this.buckets[bucket];
    let lo = 0;
    let hi = this.counts[bucket]!;
    if (!buf) return -1;
    const rec = this.recordBytes;
    const key = id.readUInt32BE(2);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = mid * rec;
      const word = buf.readUInt32BE(at + 2);
      const c = key < word ? -1 : key > word ? 1 : compareTail(id, buf, at);
      if (c === 0) return mid;
      if (c < 0) hi = mid;
      else lo = mid + 1;
    }
    return -lo - 1;
  }

  /** find returns where `id` (32 bytes) is recorded, or null. */
  find(id: Buffer): RecordRef | null {
    const bucket = (id[0]! << 8) | id[1]!;
    const i = this.search(bucket, id);
    return i < 0 ? null : { buf: this.buckets[bucket]!, at: i * this.recordBytes };
  }

  has(id: Buffer): boolean {
    const bucket = (id[0]! << 8) | id[1]!;
    return this.search(bucket, id) >= 0;
  }

  /**
   * insert records `id` unless present. It returns the new record, whose
   * payload (zeroed) the caller fills at `at + ID_BYTES`, or null when the id
   * was there already (its record is left as it was).
   */
  insert(id: Buffer): RecordRef | null {
    if (id.length !== ID_BYTES) throw new Error(`blob id must be ${ID_BYTES} bytes, got ${id.length}`);
    const bucket = (id[0]! << 8) | id[1]!;
    const found = this.search(bucket, id);
    if (found >= 0) return null;
    const pos = -found - 1;
    const rec = this.recordBytes;
    const n = this.counts[bucket]!;
    let buf = this.buckets[bucket];
    if (!buf || (n + 1) * rec > buf.length) {
      const records = n === 0 ? FIRST_RECORDS : n + Math.max(FIRST_RECORDS, n >>> 3);
      const grown = Buffer.allocUnsafeSlow(records * rec);
      if (buf) buf.copy(grown, 0, 0, n * rec);
      this.buckets[bucket] = grown;
      buf = grown;
    }
    const at = pos * rec;
    if (pos < n) buf.copyWithin(at + rec, at, n * rec);
    id.copy(buf, at);
    buf.fill(0, at + ID_BYTES, at + rec);
    this.counts[bucket] = n + 1;
    this.count++;
    return { buf, at };
  }

  /** records yields every record, in id order. The table must not change meanwhile. */
  *records(): IterableIterator<RecordRef> {
    const rec = this.recordBytes;
    for (let b = 0; b < BUCKETS; b++) {
      const buf = this.buckets[b];
      if (!buf) continue;
      const end = this.counts[b]! * rec;
      for (let at = 0; at < end; at += rec) yield { buf, at };
    }
  }

  /** forEach visits every record, in id order. The table must not change meanwhile. */
  forEach(fn: (buf: Buffer, at: number) => void): void {
    const rec = this.recordBytes;
    for (let b = 0; b < BUCKETS; b++) {
      const buf = this.buckets[b];
      if (!buf) continue;
      const end = this.counts[b]! * rec;
      for (let at = 0; at < end; at += rec) fn(buf, at);
    }
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
