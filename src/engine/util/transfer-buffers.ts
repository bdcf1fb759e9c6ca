/**
 * transfer-buffers: ArrayBuffers handed to worker threads and back, kept for
 * reuse. Transferring a buffer moves its memory without a copy; reusing the
 * ones that come back saves the page faults of touching fresh memory (about
 * 10 ms per MB on small VMs). Sizes are powers of two from MIN_BYTES, so a
 * returned buffer fits the next job of a similar size.
 */

/** The smallest buffer handed out. */
const MIN_BYTES = 64 * 1024;
/** Buffers kept per size. */
const KEEP = 8;
/**
 * Bytes kept in all (whatever the sizes): 8 per size class across classes
 * from 64 KiB to 16 MiB could otherwise keep 250 MB.
 */
const KEEP_BYTES = 32 * 1024 * 1024;

export class TransferBuffers {
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;

  constructor(private readonly keepBytes = KEEP_BYTES) {}

  /** Bytes of the buffers kept for reuse. */
  get keptBytes(): number {
    return this.spareBytes;
  }

  /** take returns a buffer of at least `n` bytes, reused when one is free. */
  take(n: number): ArrayBuffer {
    let size = MIN_BYTES;
    while (size < n) size *= 2;
    const reused = this.spare.get(size)?.pop();
    if (!reused) return new ArrayBuffer(size);
    this.spareBytes -= size;
    return reused;
  }

  /** give keeps `buf` for reuse (up to KEEP per size and `keepBytes` in all). The caller must not use it after. */
  give(buf: ArrayBuffer): void {
    const list = this.spare.get(buf.byteLength) ?? [];
    if (list.length >= KEEP || this.spareBytes + buf.byteLength > this.keepBytes) return;
    list.push(buf);
    this.spareBytes += buf.byteLength;
    this.spare.set(buf.byteLength, list);
  }
}
