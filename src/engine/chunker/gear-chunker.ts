/**
 * gear-chunker: the reference implementation of the content-defined chunker in
 * plain JavaScript. The native addon runs the same algorithm (cut_one in
 * native/kova_native.c) at several GB/s; this one exists so a test can prove
 * both cut at exactly the same offsets, and documents the algorithm.
 */
import type { GearConfig } from './gear.js';

/**
 * cutOne returns the length of the chunk that starts at data[0], given that
 * `n` bytes are available (n is the rest of the file, or at least maxSize).
 */
export function cutOne(data: Uint8Array, n: number, g: GearConfig): number {
  if (n <= g.minSize) return n;
  if (n > g.maxSize) n = g.maxSize;
  const normal = Math.min(g.avgSize, n);
  const gear = g.gear;
  let h = 0;
  let i = g.minSize;
  for (; i < normal; i++) {
    h = ((h << 1) + gear[data[i] as number]!) >>> 0;
    if ((h & g.maskS) === 0) return i + 1;
  }
  for (; i < n; i++) {
    h = ((h << 1) + gear[data[i] as number]!) >>> 0;
    if ((h & g.maskL) === 0) return i + 1;
  }
  return n;
}

/** referenceCutPoints returns the end offset of every chunk of a whole file. */
export function referenceCutPoints(data: Uint8Array, g: GearConfig): number[] {
  const cuts: number[] = [];
  let pos = 0;
  while (pos < data.length) {
    pos += cutOne(data.subarray(pos), data.length - pos, g);
    cuts.push(pos);
  }
  return cuts;
}
