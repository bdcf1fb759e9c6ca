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
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  acquire(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  release(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}
