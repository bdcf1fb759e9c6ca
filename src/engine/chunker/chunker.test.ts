/**
 * The native chunker must cut at exactly the offsets of the JavaScript
 * reference, whatever the sizes of the pieces it is fed, and the cuts must be
 * content-defined: bounded in size, deterministic, and local to an edit.
 */
import { createHash } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prng } from '../testing.js';
import { Chunker, type HashedChunk } from './chunker.js';
import { referenceCutPoints } from './gear-chunker.js';
import { type GearConfig, resolveGear } from './gear.js';

const MIN = 256;
const AVG = 1024;
const MAX = 4096;
const SEED = '0123456789abcdef';

const gear = resolveGear({ minSize: MIN, avgSize: AVG, maxSize: MAX, seed: SEED });

type Kind = 'random' | 'zeros' | 'pattern' | 'sparse-noise' | 'text';

function makeData(kind: Kind, seed: number, length: number): Buffer {
  switch (kind) {
    case 'random':
      return prng(seed, length);
    case 'zeros':
      return Buffer.alloc(length);
    case 'pattern': {
      const unit = prng(seed, 1 + ((seed >>> 0) % 97));
      const out = Buffer.alloc(length);
      for (let i = 0; i < length; i += unit.length) unit.copy(out, i);
      return out;
    }
    case 'sparse-noise': {
      const out = Buffer.alloc(length);
      const noise = prng(seed, Math.ceil(length / 64) + 1);
      for (let i = 0; i < noise.length && i * 64 < length; i++) out[i * 64] = noise[i]!;
      return out;
    }
    case 'text': {
      const words = ['volume', 'snapshot', 'kova', 'chunk', 'the', 'a', '\n', 'data', 'tenant', '  '];
      const pick = prng(seed, length);
      const parts: string[] = [];
      let n = 0;
      for (let i = 0; n < length; i++) {
        const w = words[pick[i % pick.length]! % words.length]!;
        parts.push(w, ' ');
        n += w.length + 1;
      }
      return Buffer.from(parts.join('')).subarray(0, length);
    }
  }
}

/** splitIntoPieces cuts data at the given sizes (cycled), like reads of random length. */
function splitIntoPieces(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

/** bytesOf checks each chunk's id is the BLAKE3 of its bytes (by an independent implementation) and returns the bytes. */
function bytesOf(chunks: readonly HashedChunk[]): Buffer[] {
  for (const c of chunks) expect(c.id).toBe(Buffer.from(blake3(c.data)).toString('hex'));
  return chunks.map((c) => c.data);
}

/** streamCuts feeds the pieces through a Chunker and returns the end offsets and the chunks. */
function streamCuts(pieces: readonly Buffer[], g: GearConfig = gear): { cuts: number[]; chunks: Buffer[] } {
  const c = new Chunker(g);
  const chunks: Buffer[] = [];
  // Chunks may be views of the pieces, which stay untouched until finish().
  for (const p of pieces) chunks.push(...bytesOf(c.push(Buffer.from(p))));
  chunks.push(...bytesOf(c.finish()));
  const cuts: number[] = [];
  let pos = 0;
  for (const ch of chunks) {
    pos += ch.length;
    cuts.push(pos);
  }
  return { cuts, chunks };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const kindArb = fc.constantFrom<Kind>('random', 'random', 'random', 'zeros', 'pattern', 'sparse-noise', 'text');

describe('Chunker (native) against referenceCutPoints (JavaScript)', () => {
  it('cuts at exactly the same offsets, for any data fed in pieces of any size', () => {
    fc.assert(
      fc.property(
        kindArb,
        fc.integer(),
        fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 200_000 })),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 20_000 })), { minLength: 1, maxLength: 12 }),
        (kind, seed, length, sizes) => {
          const data = makeData(kind, seed, length);
          const expected = referenceCutPoints(data, gear);
          const { cuts, chunks } = streamCuts(splitIntoPieces(data, sizes));
          expect(cuts).toEqual(expected);
          expect(Buffer.concat(chunks).equals(data)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('agrees with the reference when scanning on the thread pool (pushAsync)', async () => {
    for (const [seed, length] of [
      [1, 0],
      [2, 100],
      [3, 50_000],
      [4, 300_001],
    ] as const) {
      const data = makeData('random', seed, length);
      const c = new Chunker(gear);
      const chunks: Buffer[] = [];
      for (const p of splitIntoPieces(data, [70_000, 1, 3000])) chunks.push(...bytesOf(await c.pushAsync(Buffer.from(p))));
      chunks.push(...bytesOf(c.finish()));
      let pos = 0;
      expect(chunks.map((ch) => (pos += ch.length))).toEqual(referenceCutPoints(data, gear));
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    }
  });

  it('returns a chunk that spans pieces as a copy, unaffected by later changes to the pieces', () => {
    const data = makeData('random', 11, 40_000);
    const pieces = splitIntoPieces(data, [100]).map((p) => Buffer.from(p));
    const c = new Chunker(gear);
    const chunks: Buffer[] = [];
    const consumed: Buffer[] = [];
    for (const p of pieces) {
      const out = bytesOf(c.push(p));
      consumed.push(p);
      chunks.push(...out);
      // Every chunk so far has been returned: the pieces before the open one may be reused.
      if (out.length > 0) {
        for (const q of consumed.slice(0, -1)) q.fill(0xa5);
        consumed.splice(0, consumed.length - 1);
      }
    }
    chunks.push(...bytesOf(c.finish()));
    expect(chunks.length).toBeGreaterThan(10);
    // Pieces are 100 bytes and chunks at least 256: all but the boundary pieces were overwritten.
    const expected = referenceCutPoints(data, gear);
    let pos = 0;
    chunks.forEach((ch, i) => {
      expect(ch.equals(data.subarray(pos, expected[i])), `chunk ${i}`).toBe(true);
      pos = expected[i]!;
    });
  });

  it('joins a chunk that spans pieces only when its data is read, once', () => {
    const data = makeData('random', 12, 40_000);
    const c = new Chunker(gear);
    const chunks = splitIntoPieces(data, [100]).flatMap((p) => c.push(Buffer.from(p)));
    chunks.push(...c.finish());
    const spanning = chunks.filter((ch) => ch.pieces.length > 1);
    expect(spanning.length).toBeGreaterThan(5);
    let pos = 0;
    for (const ch of chunks) {
      const length = ch.pieces.reduce((n, p) => n + p.length, 0);
      // The pieces are the chunk's bytes in order, views of what was pushed.
      expect(Buffer.concat(ch.pieces).equals(data.subarray(pos, pos + length))).toBe(true);
      expect(ch.data.length).toBe(length);
      expect(ch.data.equals(data.subarray(pos, pos + length))).toBe(true);
      // Read twice, the data is the same buffer: joined once.
      expect(ch.data).toBe(ch.data);
      if (ch.pieces.length === 1) expect(ch.data).toBe(ch.pieces[0]);
      pos += length;
    }
    expect(pos).toBe(data.length);
  });

  it('agrees with the reference at the size boundaries (0, min, min+1, avg, max, max+1, 2·max)', () => {
    for (const kind of ['random', 'zeros', 'pattern'] as const) {
      for (const length of [0, 1, MIN - 1, MIN, MIN + 1, AVG - 1, AVG, AVG + 1, MAX - 1, MAX, MAX + 1, 2 * MAX, 2 * MAX + 1, 10 * MAX]) {
        const data = makeData(kind, length + 7, length);
        const expected = referenceCutPoints(data, gear);
        expect(streamCuts([data]).cuts, `${kind} ${length}`).toEqual(expected);
        expect(streamCuts(splitIntoPieces(data, [1])).cuts, `${kind} ${length} bytewise`).toEqual(expected);
      }
    }
  });

  it('agrees with the reference for other parameters and seeds (including the defaults)', () => {
    const configs = [
      resolveGear({ minSize: 64, avgSize: 64, maxSize: 64, seed: 'ffffffffffffffff' }),
      resolveGear({ minSize: 64, avgSize: 128, maxSize: 8192, seed: '0000000000000000' }),
      resolveGear({ minSize: 1000, avgSize: 2048, maxSize: 3000, seed: 'deadbeefcafef00d' }),
      resolveGear({ minSize: 256 * 1024, avgSize: 1024 * 1024, maxSize: 4 * 1024 * 1024, seed: '8badf00d8badf00d' }),
    ];
    for (const [i, g] of configs.entries()) {
      const length = i === 3 ? 12 * 1024 * 1024 + 12345 : 100_000 + i;
      const data = makeData('random', 1000 + i, length);
      const expected = referenceCutPoints(data, g);
      expect(expected.length).toBeGreaterThan(1);
      expect(streamCuts(splitIntoPieces(data, [777, 65536, 3 * 1024 * 1024]), g).cuts).toEqual(expected);
    }
  });

  it('before finish(), decides only cuts that do not depend on bytes not seen yet', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 60_000 }), (seed, length) => {
        const data = makeData('random', seed, length);
        const c = new Chunker(gear);
        let pos = 0;
        const partial = c.push(Buffer.from(data)).map((ch) => (pos += ch.data.length));
        const full = referenceCutPoints(data, gear);
        expect(partial).toEqual(full.slice(0, partial.length));
        const last = partial[partial.length - 1] ?? 0;
        // The undecided tail is shorter than maxSize (a longer one would have been cut).
        expect(data.length - last).toBeLessThan(MAX);
      }),
      { numRuns: 60 },
    );
  });
});

describe('chunk sizes and determinism', () => {
  it('never makes a chunk shorter than minSize (except the last) or longer than maxSize', () => {
    fc.assert(
      fc.property(kindArb, fc.integer(), fc.integer({ min: 1, max: 150_000 }), (kind, seed, length) => {
        const data = makeData(kind, seed, length);
        const { chunks } = streamCuts(splitIntoPieces(data, [4099]));
        expect(chunks.length).toBeGreaterThan(0);
        chunks.forEach((c, i) => {
          expect(c.length).toBeLessThanOrEqual(MAX);
          expect(c.length).toBeGreaterThan(0);
          if (i < chunks.length - 1) expect(c.length).toBeGreaterThanOrEqual(MIN);
        });
      }),
      { numRuns: 80 },
    );
  });

  it('cuts a long run of zeros into equal chunks within [min, max]', () => {
    const { chunks } = streamCuts([Buffer.alloc(10 * MAX + 5)]);
    // Zeros hash the same from every chunk start, so every chunk but the last has one size.
    const sizes = new Set(chunks.slice(0, -1).map((c) => c.length));
    expect(sizes.size).toBe(1);
    const [size] = [...sizes] as [number];
    expect(size).toBeGreaterThanOrEqual(MIN);
    expect(size).toBeLessThanOrEqual(MAX);
    expect(Buffer.concat(chunks).length).toBe(10 * MAX + 5);
  });

  it('clusters chunk sizes around avgSize on random data', () => {
    const data = makeData('random', 42, 2_000_000);
    const { chunks } = streamCuts([data]);
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(AVG * 0.6);
    expect(mean).toBeLessThan(AVG * 1.6);
  });

  it('is deterministic: same data and seed give the same chunks; another seed other cuts', () => {
    const data = makeData('random', 7, 300_000);
    const a = streamCuts(splitIntoPieces(data, [1000]));
    const b = streamCuts(splitIntoPieces(data, [65536, 3]));
    expect(b.cuts).toEqual(a.cuts);
    expect(b.chunks.map(sha)).toEqual(a.chunks.map(sha));
    const other = resolveGear({ minSize: MIN, avgSize: AVG, maxSize: MAX, seed: 'fedcba9876543210' });
    expect(streamCuts([data], other).cuts).not.toEqual(a.cuts);
  });

  it('is content-defined: inserting one byte changes only the chunks near it', () => {
    const data = makeData('random', 99, 400_000);
    const before = streamCuts([data]);
    const beforeSet = new Set(before.chunks.map(sha));
    for (const at of [1, 5000, 123_457, 200_000, 399_999]) {
      const edited = Buffer.concat([data.subarray(0, at), Buffer.from([0x5a]), data.subarray(at)]);
      const after = streamCuts(splitIntoPieces(edited, [3333]));
      expect(after.cuts).toEqual(referenceCutPoints(edited, gear));
      // Chunks that end before the insertion are untouched.
      const unchangedPrefix = before.cuts.filter((c) => c < at).length;
      expect(after.cuts.slice(0, unchangedPrefix)).toEqual(before.cuts.slice(0, unchangedPrefix));
      // Every chunk after the edit realigns quickly: the cuts after it are the old ones shifted by one.
      const afterSet = new Set(after.chunks.map(sha));
      const newChunks = after.chunks.filter((c) => !beforeSet.has(sha(c))).length;
      const lostChunks = before.chunks.filter((c) => !afterSet.has(sha(c))).length;
      expect(newChunks, `insert at ${at}`).toBeLessThanOrEqual(3);
      expect(lostChunks, `insert at ${at}`).toBeLessThanOrEqual(3);
      expect(newChunks).toBeGreaterThanOrEqual(1);
      const shiftedTail = before.cuts.filter((c) => c > at + MAX * 2).map((c) => c + 1);
      expect(after.cuts.filter((c) => c > at + MAX * 2 + 1)).toEqual(shiftedTail);
    }
  });
});
