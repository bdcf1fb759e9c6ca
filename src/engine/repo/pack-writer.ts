/**
 * pack-writer: collects blobs into pack files and writes each pack durably
 * once it reaches the target size.
 *
 * Blobs are copied into a pack buffer as they are added (so callers may
 * reuse their memory at once); the buffer holds header, blobs and trailer
 * contiguously, is hashed on the thread pool, written, and recycled. Up to
 * `maxInFlight` packs are written concurrently; add() waits when that many
 * are pending, which bounds memory to about (maxInFlight + 1) × packSize.
 *
 * onWritten is called for each pack after it is durable: only then may its
 * blobs be listed in an index.
 *
 * Failure: the first write that fails is kept; from then on no pack is
 * started, and add() and flush() reject with that one error (the background
 * writes never reject on their own, so nothing goes unhandled). discard()
 * drops what is buffered and waits for the writes in flight, for a caller
 * that gives up and removes what was written.
 */
import type { BlobEntry, BlobType, Compression } from '../format/blob.js';
import type { IndexedPack } from '../format/index-format.js';
import { ENTRY_BYTES, PACK_FOOTER_BYTES, PACK_HEADER_BYTES, packHeader, packTrailer } from '../format/pack-format.js';
import { HUGE_PAGES, hashMany } from '../native.js';
import type { Storage } from '../storage/storage.js';
import { BufferPool } from '../util/buffer-pool.js';
import { packName } from './master-index.js';

export class PackWriter {
  private readonly pool: BufferPool;
  private buf: Buffer | null = null;
  private entries: BlobEntry[] = [];
  private offset = PACK_HEADER_BYTES;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(
    private readonly storage: Storage,
    private readonly packSize: number,
    private readonly onWritten: (pack: IndexedPack) => void,
    private readonly maxInFlight = 2,
  ) {
    // Room for a full pack plus a typical chunk and its trailer; a blob that
    // does not fit closes the pack (and a huge one gets a buffer of its own).
    this.pool = new BufferPool(packSize + 2 * 1024 * 1024, maxInFlight + 1, HUGE_PAGES);
  }

  /** The first write error, if a write failed (or discard() was called). */
  get failed(): unknown {
    return this.failure;
  }

  /** Bytes buffered for the pack being assembled. */
  get buffered(): number {
    return this.offset - PACK_HEADER_BYTES;
  }

  async add(type: BlobType, id: string, stored: Buffer, compression: Compression, rawLength: number): Promise<void> {
    this.throwIfFailed();
    const trailerRoom = (this.entries.length + 1) * ENTRY_BYTES + PACK_FOOTER_BYTES;
    if (this.buf && this.offset + stored.length + trailerRoom > this.buf.length) this.finishPack();
    if (!this.buf) {
      const need = PACK_HEADER_BYTES + stored.length + ENTRY_BYTES + PACK_FOOTER_BYTES;
      this.buf = need <= this.pool.size ? this.pool.acquire() : Buffer.allocUnsafeSlow(need);
      packHeader().copy(this.buf, 0);
      this.offset = PACK_HEADER_BYTES;
    }
    stored.copy(this.buf, this.offset);
    this.entries.push({ id, type, compression, offset: this.offset, length: stored.length, rawLength });
    this.offset += stored.length;
    if (this.offset >= this.packSize) {
      this.finishPack();
      while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
  }

  /** flush writes the partial pack, if any, and waits for every write. */
  async flush(): Promise<void> {
    this.finishPack();
    await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  /**
   * discard drops the pack being assembled and waits for every write in
   * flight; it never rejects. Packs already written stay (onWritten was
   * called for each): removing them is the caller's business.
   */
  async discard(): Promise<void> {
    this.failure ??= new Error('pack writer discarded');
    this.dropBuffer();
    await Promise.all(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  private dropBuffer(): void {
    if (this.buf) this.pool.release(this.buf);
    this.buf = null;
    this.entries = [];
    this.offset = PACK_HEADER_BYTES;
  }

  private finishPack(): void {
    // After a failure nothing more is written: the operation is over.
    if (this.failure !== null) return this.dropBuffer();
    const buf = this.buf;
    if (!buf || this.entries.length === 0) return;
    const entries = this.entries;
    const trailer = packTrailer(entries);
    trailer.copy(buf, this.offset);
    const size = this.offset + trailer.length;
    this.buf = null;
    this.entries = [];
    this.offset = PACK_HEADER_BYTES;
    const bytes = buf.subarray(0, size);
    const p: Promise<void> = hashMany([bytes])
      .then(async ([id]) => {
        await this.storage.write(packName(id!), bytes);
        this.onWritten({ id: id!, size, blobs: entries });
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.pool.release(buf);
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }
}
