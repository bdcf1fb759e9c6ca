/**
 * The compact master index and id set (id-table.ts): every lookup answers
 * as a plain Map of the same entries would, the first location of a blob
 * listed twice wins, buckets grow without losing or reordering entries, and
 * an index written to an index file and read back gives the same lookups.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BlobEntry, type BlobLocation, BlobType, Compression } from '../format/blob.js';
import { decodeIndex, encodeIndex, indexPacks, rawIndexPacks, type IndexedPack } from '../format/index-format.js';
import { hash } from '../format/hash.js';
import { IdSet } from './id-table.js';
import { tempDir } from '../testing.js';
import { MasterIndex, type RawLocation } from './master-index.js';

const hex = (n = 32): string => randomBytes(n).toString('hex');

function entry(id: string, i: number): BlobEntry {
  return {
    id,
    type: i % 3 === 0 ? BlobType.Tree : BlobType.Data,
    compression: i % 2 === 0 ? Compression.Zstd : Compression.None,
    offset: 16 + i * 1000,
    length: 1 + (i % 5000),
    rawLength: 1 + ((i * 7) % 70000),
  };
}

/** packs of `perPack` random blobs each; returns them with the reference Map (first location wins). */
function randomPacks(
  packCount: number,
  perPack: number,
  ids: () => string = () => hex(),
): { packs: IndexedPack[]; ref: Map<string, BlobLocation> } {
  const packs: IndexedPack[] = [];
  const ref = new Map<string, BlobLocation>();
  let i = 0;
  for (let p = 0; p < packCount; p++) {
    const id = hex();
    const blobs = Array.from({ length: perPack }, () => entry(ids(), i++));
    packs.push({ id, size: 1_000_000 + p, blobs });
    for (const b of blobs) {
      if (ref.has(b.id)) continue;
      const { id: _id, ...rest } = b;
      ref.set(b.id, { ...rest, pack: id });
    }
  }
  return { packs, ref };
}

describe('MasterIndex', () => {
  it('answers every lookup as a Map of the same entries does', () => {
    const { packs, ref } = randomPacks(20, 1000);
    const index = new MasterIndex();
    for (const p of packs) index.add(p);
    expect(index.blobCount).toBe(ref.size);
    for (const [id, loc] of ref) {
      expect(index.has(id)).toBe(true);
      expect(index.get(id)).toEqual(loc);
    }
    for (let k = 0; k < 1000; k++) {
      const absent = hex();
      expect(index.has(absent)).toBe(false);
      expect(index.get(absent)).toBeUndefined();
    }
    expect(index.packs.get(packs[3]!.id)).toEqual({ size: packs[3]!.size, blobs: 1000 });
  });

  it('never matches a malformed id', () => {
    const index = new MasterIndex();
    const id = hex();
    index.add({ id: hex(), size: 100, blobs: [entry(id, 1)] });
    expect(index.has(id)).toBe(true);
    expect(index.has(id.slice(0, 63))).toBe(false);
    expect(index.has(`${id.slice(0, 62)}zz`)).toBe(false);
    expect(index.has(`${id}00`)).toBe(false);
    expect(index.get('')).toBeUndefined();
  });

  it('keeps the first location of a blob listed twice', () => {
    const id = hex();
    const first = hex();
    const second = hex();
    const index = new MasterIndex();
    index.add({ id: first, size: 10, blobs: [{ ...entry(id, 1), offset: 111 }] });
    index.add({ id: second, size: 10, blobs: [{ ...entry(id, 2), offset: 222 }, entry(hex(), 3)] });
    expect(index.blobCount).toBe(2);
    expect(index.get(id)).toMatchObject({ pack: first, offset: 111 });
    expect(index.packs.get(second)).toEqual({ size: 10, blobs: 2 });
    // The blob counts where it was first listed.
    expect(index.locatedIn(first)).toBe(1);
    expect(index.locatedIn(second)).toBe(1);
    expect(index.locatedIn(hex())).toBe(0);
  });

  it('grows one bucket to thousands of entries and keeps them sorted and findable', () => {
    // All ids share their first two bytes: one bucket takes every entry.
    const { packs, ref } = randomPacks(5, 1000, () => `abcd${hex(30)}`);
    const index = new MasterIndex();
    for (const p of packs) index.add(p);
    expect(index.blobCount).toBe(5000);
    for (const [id, loc] of ref) expect(index.get(id)).toEqual(loc);
    const listed = [...index.entries()].map(([id]) => id);
    expect(listed).toEqual([...ref.keys()].sort());
  });

  it('stores a blob at an offset and lengths up to 4 GiB, and refuses more', () => {
    const index = new MasterIndex();
    const id = hex();
    const big = { ...entry(id, 0), offset: 0xffffffff, length: 0xfffffff0, rawLength: 0xffffffff };
    index.add({ id: hex(), size: 1, blobs: [big] });
    expect(index.get(id)).toMatchObject({ offset: 0xffffffff, length: 0xfffffff0, rawLength: 0xffffffff });
    expect(() => index.add({ id: hex(), size: 1, blobs: [{ ...entry(hex(), 0), offset: 2 ** 32 }] })).toThrow(/4 GiB/);
  });

  it('gives the same lookups after a round trip through an index file', () => {
    const { packs } = randomPacks(8, 500);
    // A blob in two packs: the file keeps both, the index the first.
    const dup = packs[0]!.blobs[7]!;
    packs[5] = { ...packs[5]!, blobs: [...packs[5]!.blobs, { ...dup, offset: 999_999 }] };
    const before = new MasterIndex();
    for (const p of packs) before.add(p);
    const after = new MasterIndex();
    for (const p of decodeIndex(encodeIndex(packs), 'index/test')) after.add(p);
    expect([...after.entries()]).toEqual([...before.entries()]);
    expect(after.get(dup.id)).toMatchObject({ pack: packs[0]!.id, offset: dup.offset });
    expect([...after.packs]).toEqual([...before.packs]);
  });

  it('loads an index file entry by entry (addRaw) into the same lookups as decoded packs', () => {
    const { packs, ref } = randomPacks(6, 700);
    const dup = packs[0]!.blobs[3]!;
    packs[4] = { ...packs[4]!, blobs: [...packs[4]!.blobs, { ...dup, offset: 777_777 }] };
    const decoded = new MasterIndex();
    for (const p of packs) decoded.add(p);
    const raw = new MasterIndex();
    for (const p of rawIndexPacks(encodeIndex(packs), 'index/test')) raw.addRaw(p);
    expect([...raw.entries()]).toEqual([...decoded.entries()]);
    expect([...raw.packs]).toEqual([...decoded.packs]);
    for (const [id, loc] of ref) expect(raw.get(id)).toEqual(loc);
    expect(raw.get(dup.id)).toMatchObject({ pack: packs[0]!.id, offset: dup.offset });
    expect(raw.locatedIn(packs[4]!.id)).toBe(700);
  });

  it('loads several index files, with blobs listed in more than one and some added before, as add() does', () => {
    const { packs } = randomPacks(12, 400);
    // Blobs listed again: within a file, across files, and one already added from a decoded pack.
    const again = (p: number, blobs: BlobEntry[]): void => {
      packs[p] = { ...packs[p]!, blobs: [...packs[p]!.blobs, ...blobs.map((b) => ({ ...b, offset: 5_000_000 + p }))] };
    };
    again(2, packs[1]!.blobs.slice(0, 50));
    again(9, [...packs[0]!.blobs.slice(100, 150), ...packs[7]!.blobs.slice(0, 30)]);
    const early = { id: hex(), size: 77, blobs: [packs[10]!.blobs[5]!, packs[3]!.blobs[6]!].map((b) => ({ ...b, offset: 42 })) };
    const files = [packs.slice(0, 4), packs.slice(4, 8), packs.slice(8)].map((ps) => encodeIndex(ps));
    const decoded = new MasterIndex();
    const raw = new MasterIndex();
    decoded.add(early);
    raw.add(early);
    for (const f of files) {
      for (const p of decodeIndex(f, 'index/test')) decoded.add(p);
      for (const p of rawIndexPacks(f, 'index/test')) raw.addRaw(p);
    }
    expect(raw.blobCount).toBe(decoded.blobCount);
    expect([...raw.entries()]).toEqual([...decoded.entries()]);
    for (const p of [early, ...packs]) expect(raw.locatedIn(p.id)).toBe(decoded.locatedIn(p.id));
    expect(raw.locatedIn(early.id)).toBe(2);
    expect(raw.get(packs[10]!.blobs[5]!.id)).toMatchObject({ pack: early.id, offset: 42 });
    expect(raw.get(packs[1]!.blobs[0]!.id)).toMatchObject({ pack: packs[1]!.id });
    // Blobs added after the load go through the same table.
    const late = { id: hex(), size: 5, blobs: [packs[0]!.blobs[0]!, entry(hex(), 1)] };
    raw.add(late);
    decoded.add(late);
    expect([...raw.entries()]).toEqual([...decoded.entries()]);
    expect(raw.locatedIn(late.id)).toBe(1);
  });
});

describe('indexPacks', () => {
  it('yields pack by pack, and nothing of a file whose last entry is damaged under a valid checksum', () => {
    const { packs } = randomPacks(3, 10);
    const buf = encodeIndex(packs);
    const seen: string[] = [];
    for (const p of indexPacks(buf, 'index/ok')) seen.push(p.id);
    expect(seen).toEqual(packs.map((p) => p.id));
    // An unknown blob type in the very last entry, checksum recomputed.
    const bad = Buffer.from(buf);
    const last = bad.length - 32 - 48;
    bad[last] = 7;
    hash(bad.subarray(0, bad.length - 32)).copy(bad, bad.length - 32);
    const yielded: string[] = [];
    expect(() => {
      for (const p of indexPacks(bad, 'index/bad')) yielded.push(p.id);
    }).toThrow(/unknown blob type/);
    expect(yielded).toEqual([]);
    const rawYielded: string[] = [];
    expect(() => {
      for (const p of rawIndexPacks(bad, 'index/bad')) rawYielded.push(p.id);
    }).toThrow(/unknown blob type/);
    expect(rawYielded).toEqual([]);
  });
});

describe('MasterIndex past its memory (runs in files)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('kova-spill-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers every lookup as the in-memory index does, with most records spilled', () => {
    const { packs, ref } = randomPacks(40, 500);
    const mem = new MasterIndex();
    const spilled = new MasterIndex({ spillDir: dir, memoryRecords: 3000 });
    for (const p of packs) {
      mem.add(p);
      spilled.add(p);
    }
    try {
      expect(spilled.blobCount).toBe(ref.size);
      expect(spilled.spilledBlobs).toBe(18_000);
      // The runs' files were unlinked at once: nothing is left in the directory.
      expect(fs.readdirSync(dir)).toEqual([]);
      for (const [id, loc] of ref) {
        expect(spilled.has(id)).toBe(true);
        expect(spilled.get(id)).toEqual(loc);
      }
      for (let k = 0; k < 2000; k++) {
        const absent = hex();
        expect(spilled.has(absent)).toBe(false);
        expect(spilled.get(absent)).toBeUndefined();
      }
      // Every blob listed once, each with its location, runs and table together.
      const listed = new Map(spilled.entries());
      expect(listed.size).toBe(ref.size);
      expect(listed).toEqual(ref);
      // A blob listed again, whether its record is in a run or in the table, keeps its first location.
      const again = [...ref.keys()].filter((_, i) => i % 997 === 0);
      const late = hex();
      spilled.add({ id: late, size: 5, blobs: again.map((id, i) => ({ ...entry(id, i), offset: 7 })) });
      expect(spilled.blobCount).toBe(ref.size);
      for (const id of again) expect(spilled.get(id)).toEqual(ref.get(id));
      expect(spilled.locatedIn(late)).toBe(0);
      for (const p of packs) expect(spilled.locatedIn(p.id)).toBe(mem.locatedIn(p.id));
      // The memory held is the table's (at most 3,000 records) and a few bytes a spilled record.
      expect(spilled.allocatedBytes).toBeLessThan(mem.allocatedBytes);
    } finally {
      spilled.close();
    }
  });

  it('loads index files past its memory (addRaw) into the same lookups, spilling as add() does', () => {
    const { packs, ref } = randomPacks(30, 500);
    // Blobs listed again on both sides of the first spill: the first location wins either way.
    const dup = (p: number, from: number): void => {
      packs[p] = { ...packs[p]!, blobs: [...packs[p]!.blobs, ...packs[from]!.blobs.slice(0, 20).map((b) => ({ ...b, offset: 9 }))] };
    };
    dup(3, 1);
    dup(25, 2);
    const mem = new MasterIndex();
    const spilled = new MasterIndex({ spillDir: dir, memoryRecords: 4000 });
    for (const p of packs) mem.add(p);
    for (const p of rawIndexPacks(encodeIndex(packs), 'index/test')) spilled.addRaw(p);
    try {
      expect(spilled.spilledBlobs).toBeGreaterThan(0);
      expect(spilled.blobCount).toBe(ref.size);
      expect(new Map(spilled.entries())).toEqual(ref);
      for (const [id, loc] of ref) expect(spilled.get(id)).toEqual(loc);
      for (const p of packs) expect(spilled.locatedIn(p.id)).toBe(mem.locatedIn(p.id));
    } finally {
      spilled.close();
    }
  });

  it('keeps every record in memory when a run cannot be written, and says why', () => {
    const { packs, ref } = randomPacks(6, 500);
    // A directory that cannot be made: its parent is a file.
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, '');
    const index = new MasterIndex({ spillDir: path.join(file, 'runs'), memoryRecords: 1000 });
    for (const p of packs) index.add(p);
    expect(index.spilledBlobs).toBe(0);
    expect(index.spillError?.message).toMatch(/ENOTDIR|EEXIST/);
    expect(index.blobCount).toBe(ref.size);
    for (const [id, loc] of ref) expect(index.get(id)).toEqual(loc);
    fs.rmSync(file);
  });

  it('numbers the blobs densely once sealed, spilled or not, and voids the numbers on a spill', () => {
    const { packs, ref } = randomPacks(10, 700);
    const index = new MasterIndex({ spillDir: dir, memoryRecords: 1500 });
    for (const p of packs) index.add(p);
    try {
      index.seal();
      const seen = new Set<number>();
      const out: RawLocation = { pack: 0, type: 0, compression: 0, offset: 0, length: 0, rawLength: 0 };
      const id = Buffer.alloc(40);
      for (const [hexId, loc] of ref) {
        id.write(hexId, 5, 'hex');
        const n = index.locateSealed(id, 5, out);
        expect(n).toBeGreaterThanOrEqual(0);
        expect(n).toBeLessThan(index.blobCount);
        seen.add(n);
        expect(index.packIdOf(out.pack)).toBe(loc.pack);
        expect([out.type, out.compression, out.offset, out.length, out.rawLength]).toEqual([
          loc.type,
          loc.compression,
          loc.offset,
          loc.length,
          loc.rawLength,
        ]);
      }
      expect(seen.size).toBe(ref.size);
      id.write(hex(), 5, 'hex');
      expect(index.locateSealed(id, 5, out)).toBe(-1);
      // Enough new blobs to spill again: the numbering is void.
      index.add({ id: hex(), size: 1, blobs: Array.from({ length: 1500 }, (_, i) => entry(hex(), i)) });
      expect(() => index.locateSealed(id, 5, out)).toThrow(/changed since it was sealed/);
    } finally {
      index.close();
    }
  });

  it('finds ids whose first 8 bytes are shared across a block boundary', () => {
    // 195 ids of the first run share an 8-byte prefix: they fill blocks of
    // 85 records whose first ids (the fences) have that same prefix.
    const prefix = hex(8);
    let n = 0;
    const { packs, ref } = randomPacks(4, 100, () => (n++ % 2 === 0 ? `${prefix}${hex(24)}` : hex()));
    const index = new MasterIndex({ spillDir: dir, memoryRecords: 390 });
    for (const p of packs) index.add(p);
    try {
      expect(index.spilledBlobs).toBe(390);
      for (const [id, loc] of ref) expect(index.get(id)).toEqual(loc);
      expect(index.has(`${prefix}${hex(24)}`)).toBe(false);
    } finally {
      index.close();
    }
  });
});

describe('IdSet', () => {
  it('adds, finds and lists ids, each once', () => {
    const set = new IdSet();
    const ids = Array.from({ length: 20_000 }, () => hex());
    for (const id of ids) expect(set.add(id)).toBe(true);
    for (const id of ids.slice(0, 100)) expect(set.add(id)).toBe(false);
    expect(set.size).toBe(ids.length);
    for (const id of ids) expect(set.has(id)).toBe(true);
    for (let k = 0; k < 1000; k++) expect(set.has(hex())).toBe(false);
    const listed: string[] = [];
    set.forEach((id) => listed.push(id));
    expect(listed).toEqual([...ids].sort());
    expect(() => set.add('xyz')).toThrow(/bad blob id/);
  });

  it('finds every id at once and after merges within one bucket, and refuses duplicates either way', () => {
    const set = new IdSet();
    const ids = Array.from({ length: 3000 }, () => `abc${hex(31).slice(1)}`);
    ids.forEach((id, i) => {
      expect(set.add(id)).toBe(true);
      expect(set.has(id)).toBe(true);
      // An id from long ago (merged into the sorted run) and the previous one (maybe still in the tail).
      if (i > 0) expect(set.add(ids[i - 1]!)).toBe(false);
      expect(set.has(ids[i >> 1]!)).toBe(true);
    });
    expect(set.size).toBe(ids.length);
    const listed: string[] = [];
    set.forEach((id) => listed.push(id));
    expect(listed).toEqual([...ids].sort());
  });
});
