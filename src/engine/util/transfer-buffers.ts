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

export class TransferBuffers {
  private readonly spare = new Map<number, ArrayBuffer[]>();

  /** take returns a buffer of at least `n` bytes, reused when one is free. */
  take(n: number): ArrayBuffer {
    let size = MIN_BYTES;
    while (size < n) size *= 2;
    return this.spare.get(size)?.pop() ?? new ArrayBuffer(size);
  }

  /** give keeps `buf` for reuse (up to KEEP per size). The caller must not use it after. */
  give(buf: ArrayBuffer): void {
    const list = this.spare.get(buf.byteLength) ?? [];
    if (list.length < KEEP) list.push(buf);
    this.spare.set(buf.byteLength, list);
  }
}
