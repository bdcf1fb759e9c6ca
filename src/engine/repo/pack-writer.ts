/**
 * pack-writer: collects blobs into pack files and writes each pack durably
 * once it reaches the target size. Up to `maxInFlight` packs are written
 * concurrently; add() waits when that many are pending, which bounds memory
 * to about (maxInFlight + 1) × packSize.
 *
 * onWritten is called for each pack after it is durable: only then may its
 * blobs be listed in an index.
 */
import type { BlobEntry, BlobType, Compression } from '../format/blob.js';
import type { IndexedPack } from '../format/index-format.js';
import { PACK_HEADER_BYTES, packHeader, packTrailer } from '../format/pack-format.js';
import { sha256Hex } from '../format/hash.js';
import type { Storage } from '../storage/storage.js';
import { packName } from './master-index.js';

export class PackWriter {
  private parts: Buffer[] = [];
  private entries: BlobEntry[] = [];
  private offset = PACK_HEADER_BYTES;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(
    private readonly storage: Storage,
    private readonly packSize: number,
    private readonly onWritten: (pack: IndexedPack) => void,
    private readonly maxInFlight = 2,
  ) {}

  /** Bytes buffered for the pack being assembled. */
  get buffered(): number {
    return this.offset - PACK_HEADER_BYTES;
  }

  async add(type: BlobType, id: string, stored: Buffer, compression: Compression, rawLength: number): Promise<void> {
    this.throwIfFailed();
    this.parts.push(stored);
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

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  private finishPack(): void {
    if (this.entries.length === 0) return;
    const entries = this.entries;
    const buffers = [packHeader(), ...this.parts, packTrailer(entries)];
    this.parts = [];
    this.entries = [];
    this.offset = PACK_HEADER_BYTES;
    const id = sha256Hex(...buffers);
    const size = buffers.reduce((n, b) => n + b.length, 0);
    const p: Promise<void> = this.storage
      .write(packName(id), buffers)
      .then(
        () => this.onWritten({ id, size, blobs: entries }),
        (err: unknown) => {
          this.failure ??= err;
        },
      )
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}
