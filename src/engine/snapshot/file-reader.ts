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
 */
import { Chunker, type HashedChunk } from '../chunker/chunker.js';
import { HintedChunker, hintsFromContent } from '../chunker/hinted-chunker.js';
import type { GearConfig } from '../chunker/gear.js';
import { BlobType } from '../format/blob.js';
import type { ContentRef } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { native } from '../native.js';
import { BufferPool } from '../util/buffer-pool.js';
import type { ProgressTracker } from '../util/progress.js';

/** Reading is done in blocks of this size, from a pool shared by all readers. */
const BLOCK = 8 * 1024 * 1024;
const blocks = new BufferPool(BLOCK, 8);
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
  readonly progress: ProgressTracker;
  checkAbort(): void;
  /** Counts bytes read from the source. */
  onRead(bytes: number): void;
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
   * stored before the block's memory may be reused.
   */
  private async store(chunks: readonly HashedChunk[], out: ContentBuilder): Promise<void> {
    const saves: Array<Promise<unknown>> = [];
    for (const c of chunks) {
      if (isZero(c.data)) {
        out.add({ id: null, length: c.data.length });
        continue;
      }
      saves.push(this.deps.saveBlob(BlobType.Data, c.data, c.id));
      out.add({ id: c.id, length: c.data.length });
    }
    await Promise.all(saves);
  }

  private async readSmall(fd: number, size: number): Promise<FileContent> {
    if (size === 0) return { content: [], size: 0 };
    const buf = Buffer.allocUnsafe(size);
    const n = await fsx.readFull(fd, buf, 0, size, 0);
    this.deps.onRead(n);
    this.deps.progress.bytes(n);
    if (n === 0) return { content: [], size: 0 };
    const data = buf.subarray(0, n);
    const out = new ContentBuilder();
    if (n <= this.deps.gear.minSize) {
      await this.store([{ data, id: native.hash(data).toString('hex') }], out);
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
    const readAt = (at: number): Promise<[Buffer, number]> => {
      const buf = blocks.acquire();
      return fsx.readFull(fd, buf, 0, Math.min(BLOCK, end - at), at).then(
        (n): [Buffer, number] => [buf, n],
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
    let next: Promise<[Buffer, number]> | null = readAt(pos);
    next.catch(() => undefined);
    try {
      while (next !== null) {
        // Taken from `next` before it settles: its buffer is then `held`'s
        // to release, never also released by the `finally` below.
        const reading: Promise<[Buffer, number]> = next;
        next = null;
        const [buf, n] = await reading;
        held.push(buf);
        if (n === 0) break;
        const after: number = pos + n;
        next = after < end ? readAt(after) : null;
        // Awaited below, but it may fail while this loop awaits something
        // else: mark it handled now so that is not an unhandled rejection.
        next?.catch(() => undefined);
        this.deps.onRead(n);
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
    }
    return pos;
  }
}
