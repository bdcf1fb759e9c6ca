/**
 * chunker: splits a stream of bytes into content-defined chunks with the
 * native hot loop. Feed it buffers in order with push(); it returns the
 * chunks that ended in them. The hash state carries over between buffers, so
 * a chunk may span several; only such a chunk is copied (to make it
 * contiguous), every other one is a view of the buffer passed in. finish()
 * returns the last chunk at the end of the stream. pushAsync() does the
 * same scan on the thread pool, so several files can be chunked at once.
 */
import { native } from '../native.js';
import type { GearConfig } from './gear.js';

export class Chunker {
  /** [gear hash, bytes of the current chunk seen]. */
  private readonly state = new Uint32Array(2);
  /** Pieces of the current chunk from earlier buffers. */
  private pending: Buffer[] = [];

  constructor(private readonly g: GearConfig) {}

  /** push returns the chunks that end in `data`; they may be views of it. */
  push(data: Buffer): Buffer[] {
    const g = this.g;
    return this.split(data, native.chunkScan(data, g.gear, g.minSize, g.avgSize, g.maxSize, g.maskS, g.maskL, this.state));
  }

  /** pushAsync is push with the scan on the thread pool; calls must not overlap. */
  pushAsync(data: Buffer): Promise<Buffer[]> {
    const g = this.g;
    return new Promise((resolve, reject) =>
      native.chunkScan(data, g.gear, g.minSize, g.avgSize, g.maxSize, g.maskS, g.maskL, this.state, (err, cuts) =>
        err ? reject(err) : resolve(this.split(data, cuts)),
      ),
    );
  }

  private split(data: Buffer, cuts: Uint32Array): Buffer[] {
    const out: Buffer[] = [];
    let prev = 0;
    for (const c of cuts) {
      const piece = data.subarray(prev, c);
      if (this.pending.length > 0) {
        out.push(Buffer.concat([...this.pending, piece]));
        this.pending = [];
      } else {
        out.push(piece);
      }
      prev = c;
    }
    if (prev < data.length) this.pending.push(data.subarray(prev));
    return out;
  }

  /** finish returns the final chunk, if any, and resets the chunker. */
  finish(): Buffer[] {
    const rest = this.pending;
    this.pending = [];
    this.state.fill(0);
    if (rest.length === 0) return [];
    return [rest.length === 1 ? rest[0]! : Buffer.concat(rest)];
  }
}
