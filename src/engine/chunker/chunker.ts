/**
 * chunker: splits a stream of bytes into content-defined chunks with the
 * native hot loop. Feed it buffers in order with push(); it returns the chunks
 * it could decide and keeps the undecided tail (less than maxSize) for the
 * next push; finish() flushes the tail at the end of the stream.
 */
import { native } from '../native.js';
import type { GearConfig } from './gear.js';

export class Chunker {
  private tail: Buffer | null = null;

  constructor(private readonly g: GearConfig) {}

  /**
   * push appends data and returns the chunks now decided. The returned
   * buffers may share memory with `data`; copy them before reusing `data`.
   */
  push(data: Buffer): Buffer[] {
    const buf = this.tail ? Buffer.concat([this.tail, data]) : data;
    this.tail = null;
    return this.split(buf, false);
  }

  /** finish returns the chunks of the remaining tail. */
  finish(): Buffer[] {
    const buf = this.tail;
    this.tail = null;
    return buf ? this.split(buf, true) : [];
  }

  private split(buf: Buffer, eof: boolean): Buffer[] {
    const g = this.g;
    const cuts = native.cutPoints(buf, g.gear, g.minSize, g.avgSize, g.maxSize, g.maskS, g.maskL, eof);
    const out: Buffer[] = [];
    let prev = 0;
    for (const c of cuts) {
      out.push(buf.subarray(prev, c));
      prev = c;
    }
    // Copy the tail: the caller may reuse `data` once push() returns.
    if (prev < buf.length) this.tail = Buffer.from(buf.subarray(prev));
    return out;
  }
}
