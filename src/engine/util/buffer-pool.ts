/**
 * buffer-pool: reuses large buffers. Allocating a fresh multi-megabyte
 * Buffer per read block or pack makes V8 run full garbage collections for
 * "external memory pressure" every few hundred megabytes; recycling a few
 * buffers avoids that. A released buffer must no longer be referenced by
 * anything (including views of it).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  /**
   * @param size bytes of every buffer
   * @param keep how many released buffers to keep for reuse
   * @param align when given, each buffer is cut from an allocation `slack`
   *   bytes larger, starting `offset(raw)` bytes into it: an aligned address
   *   for direct I/O (native.alignOffset)
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    private readonly align?: { readonly slack: number; offset(raw: Buffer): number },
  ) {}

  acquire(): Buffer {
    const kept = this.free.pop();
    if (kept) return kept;
    if (!this.align) return Buffer.allocUnsafeSlow(this.size);
    // allocUnsafeSlow: a backing store of its own, which never moves.
    const raw = Buffer.allocUnsafeSlow(this.size + this.align.slack);
    const at = this.align.offset(raw);
    return raw.subarray(at, at + this.size);
  }

  release(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}
