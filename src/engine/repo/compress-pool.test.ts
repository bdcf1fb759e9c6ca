/**
 * Past the inline budget, small blobs are compressed on the workers in
 * batches: each comes back as the codec would encode it (zstd when that
 * saves 1/32, raw otherwise), and a batch's buffer is reused once every
 * blob of it is released.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Compression } from '../format/blob.js';
import { prng } from '../testing.js';
import { BlobCodec } from './codec.js';
import { CompressPool } from './compress-pool.js';

const pools: CompressPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('compressing small blobs on the workers', () => {
  it('encodes each blob of a batch as the codec would, and decodes to the same bytes', async () => {
    const codec = new BlobCodec(3);
    const pool = new CompressPool(codec, 3, 2, 2, 0);
    pools.push(pool);
    const blobs: Buffer[] = [];
    for (let i = 0; i < 700; i++) {
      const n = (i * 97) % 20_000;
      // Text-like (compressible), random (stored raw) and tiny blobs, interleaved.
      if (i % 3 === 0) blobs.push(Buffer.from(`line ${i} `.repeat(Math.ceil(n / 10) + 1).slice(0, n + 64)));
      else if (i % 3 === 1) blobs.push(prng(i, n + 100));
      else blobs.push(prng(i, i % 64));
    }
    const encoded = await Promise.all(blobs.map((b) => pool.encode(b)));
    let zstd = 0;
    for (let i = 0; i < blobs.length; i++) {
      const e = encoded[i]!;
      const expected = codec.encode(blobs[i]!);
      expect(e.compression).toBe(expected.compression);
      if (e.compression === Compression.Zstd) zstd++;
      expect(codec.decode(Buffer.from(e.stored), e.compression, blobs[i]!.length, `blob ${i}`).equals(blobs[i]!)).toBe(true);
      e.release?.();
    }
    expect(zstd).toBeGreaterThan(200);
    // Blobs of 64 bytes and more went to the workers, many to a batch.
    expect(pool.batchCount).toBeGreaterThan(0);
    expect(pool.batchCount).toBeLessThan(50);
    // Released batches are reused: a second round allocates no new buffers and still decodes.
    const again = await Promise.all(blobs.slice(0, 300).map((b) => pool.encode(b)));
    for (let i = 0; i < again.length; i++) {
      const e = again[i]!;
      expect(codec.decode(Buffer.from(e.stored), e.compression, blobs[i]!.length, `blob ${i}`).equals(blobs[i]!)).toBe(true);
      e.release?.();
    }
  }, 60_000);

  it('sends no more batches than the workers have room for, and blobs arriving meanwhile join one batch', async () => {
    const codec = new BlobCodec(3);
    // One worker with room for one job: a second batch waits for the first.
    const pool = new CompressPool(codec, 3, 1, 1, 0);
    pools.push(pool);
    const blob = (i: number): Buffer => Buffer.from(`record ${i} `.repeat(20)); // 200-odd bytes: 256 fill a batch
    const first = Array.from({ length: 256 }, (_, i) => pool.encode(blob(i))); // a full batch: sent at once
    expect(pool.batchCount).toBe(1);
    const waiting = Array.from({ length: 100 }, (_, i) => pool.encode(blob(1000 + i)));
    await new Promise((r) => setImmediate(r));
    expect(pool.batchCount).toBe(1); // no room yet: held back, not sent
    const all = await Promise.all([...first, ...waiting]);
    // Once the first came back, the 100 waiting blobs went as one batch.
    expect(pool.batchCount).toBe(2);
    all.forEach((e, i) => {
      const raw = i < 256 ? blob(i) : blob(1000 + i - 256);
      expect(codec.decode(Buffer.from(e.stored), e.compression, raw.length, `blob ${i}`).equals(raw)).toBe(true);
      e.release?.();
    });
  }, 60_000);
});
