/**
 * heap-trim: hands the C heap's free pages back to the system now and then
 * during a long operation.
 *
 * A restore of many small files allocates and frees hundreds of thousands
 * of small buffers on several threads (decode workers allocate, the main
 * thread frees), which leaves glibc's arenas with tens of megabytes of free
 * but resident pages (measured: 92 MB free of 217 MB at 500,000 files).
 * malloc_trim returns them; it costs a walk of the free lists, so it is
 * called once per `everyFiles` files or `everyBytes` bytes, whichever comes
 * first, not per file.
 *
 * Not thread-safe: one instance per operation, ticked from the main thread.
 */
import { native } from '../native.js';

export interface HeapTrimOptions {
  /** Files between two trims. Default 8,192. */
  readonly everyFiles?: number;
  /** Bytes between two trims. Default 64 MiB. */
  readonly everyBytes?: number;
  /** The trim itself (tests count the calls). Default malloc_trim through the addon. */
  readonly trim?: () => void;
}

export class HeapTrimmer {
  private files = 0;
  private bytes = 0;
  private readonly everyFiles: number;
  private readonly everyBytes: number;
  private readonly trim: () => void;

  constructor(opts: HeapTrimOptions = {}) {
    this.everyFiles = opts.everyFiles ?? 8192;
    this.everyBytes = opts.everyBytes ?? 64 * 1024 * 1024;
    this.trim = opts.trim ?? (() => void native.mallocTrim());
  }

  /** fileDone counts one file of `bytes` bytes and trims when a threshold is reached. */
  fileDone(bytes: number): void {
    this.files++;
    this.bytes += bytes;
    if (this.files < this.everyFiles && this.bytes < this.everyBytes) return;
    this.files = 0;
    this.bytes = 0;
    this.trim();
  }
}
