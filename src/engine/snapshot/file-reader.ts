/**
 * file-reader: reads one regular file's content into chunks and stores them.
 *
 * Holes are found with SEEK_DATA/SEEK_HOLE and never read; chunks that are
 * all zeros are recorded as holes too (they cost no storage and are restored
 * as holes). The next block is read while the current one is chunked and
 * stored. A file is read up to the size seen when it was opened: one appended
 * to meanwhile is captured as that prefix, one truncated meanwhile as what
 * could be read.
 */
import { Chunker } from '../chunker/chunker.js';
import type { GearConfig } from '../chunker/gear.js';
import { BlobType } from '../format/blob.js';
import type { ContentRef } from '../format/tree.js';
import * as fsx from '../fsx/fsx.js';
import { native } from '../native.js';
import type { ProgressTracker } from '../util/progress.js';

/** Reading is done in blocks of this size. */
const BLOCK = 8 * 1024 * 1024;
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
  saveBlob(type: BlobType, raw: Buffer): Promise<string>;
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

  /** read reads `size` bytes (as seen by stat) of the open file `fd`. */
  read(fd: number, size: number): Promise<FileContent> {
    return size > SMALL_FILE ? this.readLarge(fd, size) : this.readSmall(fd, size);
  }

  private async storeChunk(chunk: Buffer): Promise<ContentRef> {
    if (isZero(chunk)) return { id: null, length: chunk.length };
    return { id: await this.deps.saveBlob(BlobType.Data, chunk), length: chunk.length };
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
      out.add(await this.storeChunk(data));
    } else {
      const chunker = new Chunker(this.deps.gear);
      for (const c of [...chunker.push(data), ...chunker.finish()]) out.add(await this.storeChunk(c));
    }
    return { content: out.refs, size: n };
  }

  private async readLarge(fd: number, size: number): Promise<FileContent> {
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
      const got = await this.readExtent(fd, pos, end, out);
      if (got < end) return { content: out.refs, size: got }; // truncated meanwhile
      pos = end;
    }
    return { content: out.refs, size };
  }

  /** readExtent chunks [from, end) of the file; returns where reading stopped. */
  private async readExtent(fd: number, from: number, end: number, out: ContentBuilder): Promise<number> {
    const chunker = new Chunker(this.deps.gear);
    const readAt = (at: number): Promise<[Buffer, number]> => {
      const len = Math.min(BLOCK, end - at);
      const buf = Buffer.allocUnsafe(len);
      return fsx.readFull(fd, buf, 0, len, at).then((n): [Buffer, number] => [buf, n]);
    };
    let pos = from;
    // Read the next block while this one is chunked and stored.
    let next: Promise<[Buffer, number]> | null = readAt(pos);
    while (next !== null) {
      const [buf, n]: [Buffer, number] = await next;
      if (n === 0) break;
      const after: number = pos + n;
      next = after < end ? readAt(after) : null;
      this.deps.onRead(n);
      for (const c of chunker.push(buf.subarray(0, n))) out.add(await this.storeChunk(c));
      pos = after;
      this.deps.progress.bytes(n);
      this.deps.checkAbort();
    }
    for (const c of chunker.finish()) out.add(await this.storeChunk(c));
    return pos;
  }
}
