/**
 * file-reader: reads one regular file's content into chunks and stores them.
 *
 * Holes are found with SEEK_DATA/SEEK_HOLE and never read; chunks that are
 * all zeros are recorded as holes too (they cost no storage and are restored
 * as holes). The next block is read while the current one is chunked and
 * stored. A file is read up to the size seen when it was opened: one appended
 * to meanwhile is captured as that prefix, one truncated meanwhile as what
 * could be read.
 *
 * A large file that changed since the parent snapshot is chunked with the
 * parent's chunks as hints (hinted-chunker.ts): unchanged stretches are
 * hashed, and only the chunks around changes are scanned for boundaries.
 *
 * Extents of at least one block are read with O_DIRECT where the file system
 * allows it: the kernel reads into the block itself instead of filling the
 * page cache and copying out of it, and a snapshot does not evict the
 * running workloads' cached files with a volume it reads once. The kernel
 * writes a range's dirty cached pages back before reading it directly, so
 * what is read is what a buffered read would return. A file system that
 * refuses (EINVAL) is read through the cache.
 */
import { Chunker, type HashedChunk } from '../chunker/chunker.js';
import { HintedChunker, hintsFromContent } from '../chunker/hinted-chunker.js';
import type { GearConfig } from '../chunker/gear.js';
import { BlobType } from '../format/blob.js';
import type { ContentRef } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { HUGE_PAGES, native } from '../native.js';
import { BufferPool } from '../util/buffer-pool.js';
import type { ProgressTracker } from '../util/progress.js';

/** Reading is done in blocks of this size, from a pool shared by all readers. */
const BLOCK = 8 * 1024 * 1024;
/** Direct reads need buffers, offsets and lengths aligned to this (the native addon's DIRECT_ALIGN). */
export const DIRECT_ALIGN = 4096;
const blocks = new BufferPool(BLOCK, 8, HUGE_PAGES);
/** Files up to this size are read with one read() and not probed for holes. */
export const SMALL_FILE = 256 * 1024;

let zeroBlock = Buffer.alloc(0);

/** isZero tells whether a buffer holds only zero bytes. */
export function isZero(b: Buffer): boolean {
  const n = b.length;
  if (n === 0 || b[0] !== 0 || b[n - 1] !== 0 || b[n >> 1] !== 0) return n === 0;
  if (zeroBlock.length < n) zeroBlock = Buffer.alloc(Math.max(n, 1024 * 1024));
  return b.equals(zeroBlock.subarray(0, n));
}

export interface FileContent {
  readonly content: ContentRef[];
  readonly size: number;
}

export interface FileReaderDeps {
  readonly gear: GearConfig;
  /** saveBlob stores a blob whose id (BLAKE3) is known, unless already present. */
  saveBlob(type: BlobType, raw: Buffer, id: string): Promise<unknown>;
  /** hasBlob tells whether a blob is stored (or being stored): saveBlob would do nothing. */
  hasBlob(id: string): boolean;
  readonly progress: ProgressTracker;
  checkAbort(): void;
  /** Counts bytes read from the source; `direct`: with O_DIRECT. */
  onRead(bytes: number, direct: boolean): void;
}

/** ContentBuilder appends chunks and holes, merging adjacent holes. */
class ContentBuilder {
  readonly refs: ContentRef[] = [];

  add(ref: ContentRef): void {
    const last = this.refs[this.refs.length - 1];
    if (ref.id === null && last && last.id === null) this.refs[this.refs.length - 1] = { id: null, length: last.length + ref.length };
    else this.refs.push(ref);
  }
}

export class FileReader {
  constructor(private readonly deps: FileReaderDeps) {}

  /**
   * read reads `size` bytes (as seen by stat) of the open file `fd`;
   * `previous` is the file's content in the parent snapshot, if it had one.
   */
  read(fd: number, size: number, previous?: readonly ContentRef[]): Promise<FileContent> {
    return size > SMALL_FILE ? this.readLarge(fd, size, previous) : this.readSmall(fd, size);
  }

  /**
   * store stores a block's chunks (zeros become holes) and appends them to
   * `out` in order. Chunks of a block are compressed in parallel; all are
   * stored before the block's memory may be reused. A chunk already stored
   * (most of a file that changed in a few places) is neither joined nor
   * handed to saveBlob.
   */
  private async store(chunks: readonly HashedChunk[], out: ContentBuilder): Promise<void> {
    const saves: Array<Promise<unknown>> = [];
    for (const c of chunks) {
      const length = c.pieces.reduce((n, p) => n + p.length, 0);
      if (c.pieces.every(isZero)) {
        out.add({ id: null, length });
        continue;
      }
      if (!this.deps.hasBlob(c.id)) saves.push(this.deps.saveBlob(BlobType.Data, c.data, c.id));
      out.add({ id: c.id, length });
    }
    await Promise.all(saves);
  }

  private async readSmall(fd: number, size: number): Promise<FileContent> {
    if (size === 0) return { content: [], size: 0 };
    const buf = Buffer.allocUnsafe(size);
    const n = await fsx.readFull(fd, buf, 0, size, 0);
    this.deps.onRead(n, false);
    this.deps.progress.bytes(n);
    if (n === 0) return { content: [], size: 0 };
    const data = buf.subarray(0, n);
    const out = new ContentBuilder();
    if (n <= this.deps.gear.minSize) {
      await this.store([{ data, id: native.hash(data).toString('hex'), pieces: [data] }], out);
    } else {
      const chunker = new Chunker(this.deps.gear);
      await this.store([...chunker.push(data), ...chunker.finish()], out);
    }
    return { content: out.refs, size: n };
  }

  private async readLarge(fd: number, size: number, previous: readonly ContentRef[] | undefined): Promise<FileContent> {
    const out = new ContentBuilder();
    const { progress } = this.deps;
    let pos = 0;
    while (pos < size) {
      this.deps.checkAbort();
      const start = native.seekData(fd, pos);
      if (start < 0 || start >= size) {
        out.add({ id: null, length: size - pos });
        progress.bytes(size - pos);
        break;
      }
      if (start > pos) {
        out.add({ id: null, length: start - pos });
        progress.bytes(start - pos);
        pos = start;
      }
      let end = native.seekHole(fd, pos);
      if (end < 0 || end > size) end = size;
      const got = await this.readExtent(fd, pos, end, out, previous);
      if (got < end) return { content: out.refs, size: got }; // truncated meanwhile
      pos = end;
    }
    return { content: out.refs, size };
  }

  /**
   * readExtent chunks [from, end) of the file; returns where reading stopped.
   * Three stages overlap: reading block k+1, chunking and hashing block k on
   * the thread pool, storing block k-1's chunks.
   */
  private async readExtent(
    fd: number,
    from: number,
    end: number,
    out: ContentBuilder,
    previous: readonly ContentRef[] | undefined,
  ): Promise<number> {
    const hints = previous ? hintsFromContent(previous, from, end) : [];
    const chunker = hints.length > 0 ? new HintedChunker(this.deps.gear, hints) : new Chunker(this.deps.gear);
    let direct = end - from >= BLOCK && from % DIRECT_ALIGN === 0 && native.setDirect(fd, true);
    const stopDirect = (): void => {
      if (direct) native.setDirect(fd, false);
      direct = false;
    };
    const readBlock = async (buf: Buffer, at: number): Promise<[number, boolean]> => {
      const want = Math.min(BLOCK, end - at);
      if (direct && at % DIRECT_ALIGN !== 0) stopDirect();
      if (direct) {
        const n = await readDirect(fd, buf, want, at);
        if (n !== null) return [n, true];
        stopDirect();
      }
      return [await fsx.readFull(fd, buf, 0, want, at), false];
    };
    // One read is in flight at a time, so `direct` never changes under one.
    const readAt = (at: number): Promise<[Buffer, number, boolean]> => {
      const buf = blocks.acquire();
      return readBlock(buf, at).then(
        ([n, d]): [Buffer, number, boolean] => [buf, n, d],
        (err: unknown) => {
          blocks.release(buf);
          throw err;
        },
      );
    };
    // A block is recycled once its chunks are stored and the next block's
    // scan has copied any chunk that began in it.
    const held: Buffer[] = [];
    const keep = Math.ceil(this.deps.gear.maxSize / BLOCK) + 1;
    let pos = from;
    let storing: Promise<void> = Promise.resolve();
    let next: Promise<[Buffer, number, boolean]> | null = readAt(pos);
    next.catch(() => undefined);
    try {
      while (next !== null) {
        // Taken from `next` before it settles: its buffer is then `held`'s
        // to release, never also released by the `finally` below.
        const reading: Promise<[Buffer, number, boolean]> = next;
        next = null;
        const [buf, n, readDirectly] = await reading;
        held.push(buf);
        if (n === 0) break;
        const after: number = pos + n;
        next = after < end ? readAt(after) : null;
        // Awaited below, but it may fail while this loop awaits something
        // else: mark it handled now so that is not an unhandled rejection.
        next?.catch(() => undefined);
        this.deps.onRead(n, readDirectly);
        const chunks = await chunker.pushAsync(buf.subarray(0, n));
        await storing;
        // A chunk still open may hold views of up to maxSize / BLOCK earlier blocks.
        while (held.length > keep) blocks.release(held.shift()!);
        storing = this.store(chunks, out);
        storing.catch(() => undefined); // awaited later (see `next`)
        pos = after;
        this.deps.progress.bytes(n);
        this.deps.checkAbort();
      }
      const last = await chunker.finishAsync();
      await storing;
      await this.store(last, out);
      for (const b of held.splice(0)) blocks.release(b);
    } finally {
      // On failure, buffers still referenced by work in flight are left to the GC.
      await storing.catch(() => undefined);
      await next?.then(([b]) => blocks.release(b)).catch(() => undefined);
      stopDirect();
    }
    return pos;
  }
}

/**
 * readDirect reads `want` bytes at `pos` (aligned) of a file open with
 * O_DIRECT into `buf` (aligned, at least `want` rounded up to DIRECT_ALIGN
 * long): whole aligned lengths, the last rounded up past `want`; a read that
 * ends short of an aligned length ends at the end of the file. Returns the
 * bytes read, at most `want`, or null when the kernel refused a direct read
 * (EINVAL: the caller reads through the cache).
 */
export async function readDirect(fd: number, buf: Buffer, want: number, pos: number): Promise<number | null> {
  const len = Math.ceil(want / DIRECT_ALIGN) * DIRECT_ALIGN;
  let done = 0;
  try {
    while (done < len) {
      const n = await fsx.read(fd, buf, done, len - done, pos + done);
      done += n;
      if (n === 0 || n % DIRECT_ALIGN !== 0) break;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  }
  return Math.min(done, want);
}
