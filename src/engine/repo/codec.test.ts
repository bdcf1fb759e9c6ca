/**
 * The codec compresses into output buffers it reuses: a result's bytes stay
 * intact until it is released, however many blobs are encoded meanwhile,
 * and a released buffer serves the next blob.
 */
import { describe, expect, it } from 'vitest';
import { Compression } from '../format/blob.js';
import { prng } from '../testing.js';
import { BlobCodec } from './codec.js';

const text = (i: number, n: number): Buffer =>
  Buffer.from(`row ${i}: ${'abcdefgh'.repeat(8)}\n`.repeat(Math.ceil(n / 60) + 1)).subarray(0, n);

describe('BlobCodec', () => {
  it('stores compressible blobs with zstd, incompressible and tiny ones raw, and decodes them', () => {
    const codec = new BlobCodec(3);
    const cases: [Buffer, Compression][] = [
      [text(1, 200_000), Compression.Zstd],
      [prng(2, 200_000), Compression.None],
      [text(3, 63), Compression.None], // under 64 bytes: never compressed
      [Buffer.alloc(0), Compression.None],
    ];
    for (const [raw, expected] of cases) {
      const e = codec.encode(raw);
      expect(e.compression).toBe(expected);
      if (expected === Compression.Zstd) expect(e.stored.length).toBeLessThan(raw.length / 10);
      else expect(e.stored).toBe(raw);
      expect(codec.decode(Buffer.from(e.stored), e.compression, raw.length, 'blob').equals(raw)).toBe(true);
      e.release?.();
    }
  });

  it('keeps each held result intact while others are encoded, and reuses a buffer once released', () => {
    const codec = new BlobCodec(3);
    const blobs = Array.from({ length: 20 }, (_, i) => text(i, 50_000 + i * 1000));
    const held = blobs.map((b) => codec.encode(b));
    for (let i = 0; i < blobs.length; i++) {
      expect(held[i]!.compression).toBe(Compression.Zstd);
      expect(codec.decode(Buffer.from(held[i]!.stored), Compression.Zstd, blobs[i]!.length, `blob ${i}`).equals(blobs[i]!)).toBe(true);
    }
    expect(new Set(held.map((e) => e.stored.buffer)).size).toBe(blobs.length);

    const first = held[0]!;
    first.release?.();
    first.release?.(); // a second release must not hand the buffer out twice
    const a = codec.encode(text(100, 40_000));
    const b = codec.encode(text(101, 40_000));
    expect([a.stored.buffer, b.stored.buffer]).toContain(first.stored.buffer);
    expect(a.stored.buffer).not.toBe(b.stored.buffer);
    expect(codec.decode(Buffer.from(a.stored), a.compression, 40_000, 'a').equals(text(100, 40_000))).toBe(true);
    expect(codec.decode(Buffer.from(b.stored), b.compression, 40_000, 'b').equals(text(101, 40_000))).toBe(true);
  });

  it('compresses an incompressible blob in a kept buffer and hands it back at once', () => {
    const codec = new BlobCodec(3);
    const z = codec.encode(text(1, 100_000));
    z.release?.();
    const raw = codec.encode(prng(5, 90_000));
    expect(raw.compression).toBe(Compression.None);
    expect(raw.release).toBeUndefined();
    // The buffer the random blob was compressed into is free again: the next blob gets it.
    expect(codec.encode(text(2, 100_000)).stored.buffer).toBe(z.stored.buffer);
  });
});
