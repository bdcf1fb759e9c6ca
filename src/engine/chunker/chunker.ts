/**
 * chunker: splits a stream of bytes into content-defined chunks and hashes
 * each one, in a single native pass: a chunk is hashed right after it is
 * scanned, while its bytes are still in the CPU cache. Feed it buffers in
 * order with push() (or pushAsync(), which runs on the thread pool so
 * several files are chunked at once); each returns the chunks that ended in
 * that buffer with their ids. The scanner's and the hash's state carry over
 * between buffers, so a chunk may span several: such a chunk is copied to
 * make it contiguous, but only when its `data` is first read (a chunk that
 * is already stored, or all zeros, never is). Every other chunk is a view of
 * the buffer passed in. Either way the buffers passed in must stay untouched
 * while a chunk is in use. finish() returns the last chunk at the end of the
 * stream.
 *
 * With hints (the parent snapshot's chunks of the same file, see
 * hinted-chunker.ts) the native pass takes a chunk that is unchanged since
 * the parent by hashing it, without scanning it for a boundary.
 */
import { native } from '../native.js';
import type { GearConfig } from './gear.js';

/** Hints in the layout the native chunker reads: sorted, distinct offsets. */
export interface NativeHints {
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
  readonly ids: Buffer;
}

export interface HashedChunk {
  /** The chunk's bytes; for a chunk that spans buffers, joined when first read. */
  readonly data: Buffer;
  /** BLAKE3 of data, hex. */
  readonly id: string;
  /** The chunk's bytes in order, without joining them (one piece unless it spans buffers). */
  readonly pieces: readonly Buffer[];
}

/** chunkOf makes the chunk of `pieces`, joining them only when its data is read. */
function chunkOf(pieces: Buffer[], id: string): HashedChunk {
  if (pieces.length === 1) return { data: pieces[0]!, id, pieces };
  let joined: Buffer | undefined;
  return {
    get data() {
      return (joined ??= Buffer.concat(pieces));
    },
    id,
    pieces,
  };
}

export class Chunker {
  private readonly state = new Uint8Array(new ArrayBuffer(native.chunkStateSize()));
  /** Pieces of the current chunk from earlier buffers. */
  private pending: Buffer[] = [];

  constructor(
    private readonly g: GearConfig,
    protected readonly hints: NativeHints | null = null,
  ) {
    native.chunkReset(this.state);
  }

  push(data: Buffer): HashedChunk[] {
    const g = this.g;
    return this.split(data, native.chunkHash(data, g.gear, g.minSize, g.avgSize, g.maxSize, g.maskS, g.maskL, this.state, this.hints));
  }

  /** pushAsync is push() on the thread pool; calls must not overlap. */
  pushAsync(data: Buffer): Promise<HashedChunk[]> {
    const g = this.g;
    return new Promise((resolve, reject) =>
      native.chunkHash(data, g.gear, g.minSize, g.avgSize, g.maxSize, g.maskS, g.maskL, this.state, this.hints, (err, r) =>
        err ? reject(err) : resolve(this.split(data, r)),
      ),
    );
  }

  /** Bytes pushed since the start of the stream, and how many of them verified hints covered. */
  protected nativeStats(): { stream: number; hinted: number; misses: number } {
    return native.chunkStats(this.state);
  }

  /** finishAsync is finish() with the signature the hinted chunker shares. */
  finishAsync(): Promise<HashedChunk[]> {
    return Promise.resolve(this.finish());
  }

  /** finish returns the final chunk, if any, and resets the chunker. */
  finish(): HashedChunk[] {
    const rest = this.pending;
    this.pending = [];
    const digest = native.chunkHashFinal(this.state);
    if (rest.length === 0 || !digest) return [];
    return [chunkOf(rest, digest.toString('hex'))];
  }

  private split(data: Buffer, r: { cuts: Uint32Array; digests: Buffer }): HashedChunk[] {
    const out: HashedChunk[] = [];
    let prev = 0;
    r.cuts.forEach((c, i) => {
      const piece = data.subarray(prev, c);
      const id = r.digests.toString('hex', 32 * i, 32 * i + 32);
      if (this.pending.length > 0) {
        out.push(chunkOf([...this.pending, piece], id));
        this.pending = [];
      } else {
        out.push(chunkOf([piece], id));
      }
      prev = c;
    });
    if (prev < data.length) this.pending.push(data.subarray(prev));
    return out;
  }
}
