/**
 * gc reads trailers and writes index files from entries as stored: the same
 * checks and the same bytes as the decoded path.
 */
import { describe, expect, it } from 'vitest';
import { BlobType, Compression } from '../format/blob.js';
import { hashHex } from '../format/hash.js';
import { decodeIndex, encodeIndex, encodeRawIndex } from '../format/index-format.js';
import { ENTRY_BYTES, PACK_HEADER_BYTES, decodeEntry, packHeader, packTrailer } from '../format/pack-format.js';
import { MasterIndex, type RawLocation, packName } from '../repo/master-index.js';
import { idBytes } from '../repo/id-table.js';
import { MemoryStorage } from '../storage/memory-storage.js';
import { readPackEntries, readRawPackEntries } from './pack-reader.js';

const entries = Array.from({ length: 5 }, (_, i) => ({
  id: hashHex(Buffer.from(`blob ${i}`)),
  type: i === 0 ? BlobType.Tree : BlobType.Data,
  compression: i % 2 === 0 ? Compression.Zstd : Compression.None,
  offset: PACK_HEADER_BYTES + i * 10,
  length: 10,
  rawLength: 20 + i,
}));

async function storeWith(trailer: Buffer): Promise<MemoryStorage> {
  const storage = new MemoryStorage();
  await storage.write(packName('ab'.repeat(32)), Buffer.concat([packHeader(), Buffer.alloc(50), trailer]));
  return storage;
}

describe('readRawPackEntries', () => {
  it('gives the entries readPackEntries decodes, as stored', async () => {
    const storage = await storeWith(packTrailer(entries));
    const raw = await readRawPackEntries(storage, 'ab'.repeat(32));
    expect(raw.count).toBe(entries.length);
    expect(Array.from({ length: raw.count }, (_, i) => decodeEntry(raw.entries, i * ENTRY_BYTES, 'x'))).toEqual(
      await readPackEntries(storage, 'ab'.repeat(32)),
    );
  });

  it('refuses what readPackEntries refuses: a damaged trailer, an entry outside the data', async () => {
    const damaged = packTrailer(entries);
    damaged[3] = damaged[3]! ^ 1;
    await expect(readRawPackEntries(await storeWith(damaged), 'ab'.repeat(32))).rejects.toThrow(/trailer checksum mismatch/);
    const outside = packTrailer([...entries.slice(0, 4), { ...entries[4]!, length: 11 }]);
    await expect(readRawPackEntries(await storeWith(outside), 'ab'.repeat(32))).rejects.toThrow(/lies outside the pack's data/);
    await expect(readPackEntries(await storeWith(outside), 'ab'.repeat(32))).rejects.toThrow(/lies outside the pack's data/);
  });
});

describe('encodeRawIndex and MasterIndex.locateRaw', () => {
  it('write the bytes encodeIndex writes, and find what get() finds', () => {
    const packs = [
      { id: 'cd'.repeat(32), size: 1000, blobs: entries.slice(0, 2) },
      { id: 'ef'.repeat(32), size: 2000, blobs: entries.slice(2) },
    ];
    const raw = packs.map((p) => ({
      id: p.id,
      size: p.size,
      count: p.blobs.length,
      entries: packTrailer(p.blobs).subarray(0, p.blobs.length * ENTRY_BYTES),
    }));
    const buf = encodeRawIndex(raw);
    expect(buf).toEqual(encodeIndex(packs));

    const index = new MasterIndex();
    for (const p of decodeIndex(buf, 'x')) index.add(p);
    const out: RawLocation = { pack: -1, type: -1, compression: -1, offset: -1, length: -1, rawLength: -1 };
    for (const e of entries) {
      expect(index.locateRaw(idBytes(e.id, Buffer.alloc(32))!, out)).toBe(true);
      const { pack, ...rest } = out;
      expect({ ...rest, pack: index.packIdOf(pack) }).toEqual(index.get(e.id));
      expect(index.packNumberOf(index.packIdOf(pack))).toBe(pack);
    }
    expect(index.locateRaw(Buffer.alloc(32), out)).toBe(false);
    expect(index.packNumberOf('00'.repeat(32))).toBe(-1);
  });
});

describe('MasterIndex.seal and locateSealed', () => {
  it('number every blob once, densely, find what get() finds, and refuse to answer after an insert', () => {
    const index = new MasterIndex();
    const ids = Array.from({ length: 3000 }, (_, i) => hashHex(Buffer.from(`id ${i}`)));
    index.add({
      id: 'cd'.repeat(32),
      size: 1 << 30,
      blobs: ids.map((id, i) => ({ id, type: BlobType.Data, compression: Compression.Zstd, offset: 16 + i, length: 1, rawLength: 2 })),
    });
    index.seal();
    const out: RawLocation = { pack: -1, type: -1, compression: -1, offset: -1, length: -1, rawLength: -1 };
    const seen = new Set<number>();
    const src = Buffer.alloc(40);
    for (const id of ids) {
      src.write(id, 5, 32, 'hex'); // at an offset, as in a trailer
      const n = index.locateSealed(src, 5, out);
      expect(n).toBeGreaterThanOrEqual(0);
      expect(n).toBeLessThan(ids.length);
      seen.add(n);
      const { pack, ...rest } = out;
      expect({ ...rest, pack: index.packIdOf(pack) }).toEqual(index.get(id));
    }
    expect(seen.size).toBe(ids.length);
    src.write('00'.repeat(32), 5, 32, 'hex');
    expect(index.locateSealed(src, 5, out)).toBe(-1);
    index.add({ id: 'ef'.repeat(32), size: 100, blobs: [{ ...decodeEntry(packTrailer(entries), 0, 'x') }] });
    expect(() => index.locateSealed(src, 5, out)).toThrow(/changed since it was sealed/);
  });
});
