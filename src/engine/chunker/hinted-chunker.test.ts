/**
 * The hinted chunker must cut, and name, exactly as the plain chunker does,
 * whatever the parent was, whatever the hints say, and however the stream is
 * split into buffers; and it must actually skip the scan where nothing changed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prng } from '../testing.js';
import { Chunker, type HashedChunk } from './chunker.js';
import { referenceCutPoints } from './gear-chunker.js';
import { resolveGear } from './gear.js';
import { type ChunkHint, HintedChunker, hintsFromContent } from './hinted-chunker.js';

const gear = resolveGear({ minSize: 256, avgSize: 1024, maxSize: 4096, seed: '00c0ffee00c0ffee' });

function pieces(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0, i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

function plain(data: Buffer): HashedChunk[] {
  const c = new Chunker(gear);
  return [...c.push(Buffer.from(data)), ...c.finish()];
}

/** content is a file's content as the reader records it: chunks, with all-zero ones as merged holes. */
function content(chunks: readonly HashedChunk[]): Array<{ id: string | null; length: number }> {
  const out: Array<{ id: string | null; length: number }> = [];
  for (const c of chunks) {
    const zero = c.data.every((b) => b === 0);
    const last = out[out.length - 1];
    if (zero && last && last.id === null) last.length += c.data.length;
    else out.push({ id: zero ? null : c.id, length: c.data.length });
  }
  return out;
}

async function hinted(
  data: Buffer,
  hints: readonly ChunkHint[],
  sizes: readonly number[],
): Promise<{ chunks: HashedChunk[]; h: HintedChunker }> {
  const h = new HintedChunker(gear, hints);
  const chunks: HashedChunk[] = [];
  for (const p of pieces(data, sizes)) chunks.push(...(await h.pushAsync(Buffer.from(p))));
  chunks.push(...(await h.finishAsync()));
  return { chunks, h };
}

function summary(chunks: readonly HashedChunk[]): Array<[number, string]> {
  return chunks.map((c) => [c.data.length, c.id]);
}

function cuts(chunks: readonly HashedChunk[]): number[] {
  let pos = 0;
  return chunks.map((c) => (pos += c.data.length));
}

type Edit = { kind: 'rewrite' | 'insert' | 'delete' | 'zero'; at: number; len: number; seed: number };

function applyEdits(parent: Buffer, edits: readonly Edit[]): Buffer {
  let d = Buffer.from(parent);
  for (const e of edits) {
    const at = Math.min(e.at, d.length);
    const len = Math.min(e.len, d.length - at);
    if (e.kind === 'rewrite') prng(e.seed, len).copy(d, at);
    else if (e.kind === 'zero') d.fill(0, at, at + len);
    else if (e.kind === 'insert') d = Buffer.concat([d.subarray(0, at), prng(e.seed, e.len), d.subarray(at)]);
    else d = Buffer.concat([d.subarray(0, at), d.subarray(at + len)]);
  }
  return d;
}

const editArb = fc.record({
  kind: fc.constantFrom<Edit['kind']>('rewrite', 'rewrite', 'insert', 'delete', 'zero'),
  at: fc.nat(60_000),
  len: fc.integer({ min: 1, max: 3000 }),
  seed: fc.integer(),
});

describe('HintedChunker', () => {
  it('cuts and names exactly like the plain chunker, for any parent, edits and buffer sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 0, max: 60_000 }),
        fc.array(editArb, { maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (seed, size, edits, sizes, withZeros) => {
          const parent = prng(seed, size);
          if (withZeros && size > 8000) parent.fill(0, 2000, 7000);
          const next = applyEdits(parent, edits);
          const hints = hintsFromContent(content(plain(parent)), 0, parent.length);
          const { chunks } = await hinted(next, hints, sizes);
          expect(summary(chunks)).toEqual(summary(plain(next)));
          expect(cuts(chunks)).toEqual(referenceCutPoints(next, gear));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('is not misled by hints that lie: wrong ids, lengths, offsets and overlaps', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.array(fc.record({ offset: fc.nat(40_000), length: fc.integer({ min: 0, max: 10_000 }), pick: fc.nat() }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 3 }),
        async (seed, raw, sizes) => {
          const data = prng(seed, 40_000);
          const truth = plain(data);
          // Hints mixing true chunks (some with a wrong id) and invented ones.
          let off = 0;
          const real: ChunkHint[] = truth.map((c, i) => {
            const h = { offset: off, length: c.data.length, id: i % 3 === 0 ? '0'.repeat(64) : c.id };
            off += c.data.length;
            return h;
          });
          // Invented hints, half of them at true chunk starts (where they would be used).
          const invented: ChunkHint[] = raw.map((r, i) => ({
            offset: i % 2 ? r.offset : real[r.pick % real.length]!.offset,
            length: r.length,
            id: truth[r.pick % truth.length]!.id,
          }));
          // Where two hints share an offset the later one wins: try both ways.
          for (const hints of [
            [...invented, ...real],
            [...real, ...invented],
          ]) {
            const { chunks } = await hinted(data, hints, sizes);
            expect(summary(chunks)).toEqual(summary(truth));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('hashes unchanged stretches without scanning them', async () => {
    const parent = prng(99, 2_000_000);
    const next = applyEdits(parent, [
      { kind: 'rewrite', at: 300_000, len: 100, seed: 1 },
      { kind: 'rewrite', at: 1_200_000, len: 5000, seed: 2 },
    ]);
    const hints = hintsFromContent(content(plain(parent)), 0, parent.length);
    const { chunks, h } = await hinted(next, hints, [65_536]);
    expect(summary(chunks)).toEqual(summary(plain(next)));
    expect(h.stats.misses).toBeGreaterThanOrEqual(2);
    expect(h.stats.scannedBytes).toBeLessThan(100_000);
    expect(h.stats.hintedBytes + h.stats.scannedBytes).toBeGreaterThanOrEqual(next.length);
  });

  it('resumes the hints after an insertion shifts the data', async () => {
    const parent = prng(5, 1_000_000);
    const next = applyEdits(parent, [{ kind: 'insert', at: 400_000, len: 777, seed: 3 }]);
    const hints = hintsFromContent(content(plain(parent)), 0, parent.length);
    // Offsets after the insertion are shifted: those hints cannot match where they are.
    const { chunks, h } = await hinted(next, hints, [100_000]);
    expect(summary(chunks)).toEqual(summary(plain(next)));
    expect(h.stats.hintedBytes).toBeGreaterThan(300_000);
  });

  it('hintsFromContent keeps only chunks a scan ended, within the extent, by offset in it', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const c = 'c'.repeat(64);
    const refs = [
      { id: a, length: 100 },
      { id: b, length: 50 },
      { id: null, length: 1000 },
      { id: c, length: 70 },
      { id: a, length: 30 },
      { id: b, length: 40 },
    ];
    // b (before a hole) and the last chunk (before the end) are not trusted.
    expect(hintsFromContent(refs, 0, 1290)).toEqual([
      { offset: 0, length: 100, id: a },
      { offset: 1150, length: 70, id: c },
      { offset: 1220, length: 30, id: a },
    ]);
    expect(hintsFromContent(refs, 1150, 1290)).toEqual([
      { offset: 0, length: 70, id: c },
      { offset: 70, length: 30, id: a },
    ]);
    expect(hintsFromContent(refs, 0, 120)).toEqual([{ offset: 0, length: 100, id: a }]);
  });
});
