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
  /**
   * Trim only while the process's resident memory is above this many bytes
   * (checked at each threshold): a trim costs a walk of the free lists and
   * the page faults that fill the pages again, worth it only near the
   * memory goal. Default 0: always.
   */
  readonly aboveRss?: number;
  /** The resident memory (tests set it). Default process.memoryUsage.rss. */
  readonly rss?: () => number;
}

export class HeapTrimmer {
  private files = 0;
  private bytes = 0;
  private readonly everyFiles: number;
  private readonly everyBytes: number;
  private readonly trim: () => void;
  private readonly aboveRss: number;
  private readonly rss: () => number;

  constructor(opts: HeapTrimOptions = {}) {
    this.everyFiles = opts.everyFiles ?? 8192;
    this.everyBytes = opts.everyBytes ?? 64 * 1024 * 1024;
    this.trim = opts.trim ?? (() => void native.mallocTrim());
    this.aboveRss = opts.aboveRss ?? 0;
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
  }

  /** fileDone counts one file of `bytes` bytes and trims when a threshold is reached. */
  fileDone(bytes: number): void {
    this.filesDone(1, bytes);
  }

  /** filesDone counts `files` files of `bytes` bytes in all and trims when a threshold is reached. */
  filesDone(files: number, bytes = 0): void {
    this.files += files;
    this.bytes += bytes;
    if (this.files < this.everyFiles && this.bytes < this.everyBytes) return;
    this.files = 0;
    this.bytes = 0;
    if (this.aboveRss === 0 || this.rss() > this.aboveRss) this.trim();
  }
}
