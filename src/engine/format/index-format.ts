/**
 * index-format: the byte layout of index files (docs/format.md, "Index").
 *
 *   "KOVAIDX1" | pack count u32
 *   per pack:  pack id (32 bytes) | pack size u64 | blob count u32 |
 *              blob count × 48-byte entries (as in pack trailers)
 *   BLAKE3 of everything above (32 bytes)
 *
 * The file is named by the BLAKE3 of its whole content, so truncation or a
 * flipped bit is detected before anything is trusted.
 */
import { CorruptionError } from '../../core/errors.js';
import type { BlobEntry } from './blob.js';
import { HASH_BYTES, hash } from './hash.js';
import { ENTRY_BYTES, checkEntry, decodeEntry, encodeEntry } from './pack-format.js';

export const INDEX_MAGIC = Buffer.from('KOVAIDX1');

/** The blobs of one pack as an index file lists them. */
export interface IndexedPack {
  readonly id: string;
  readonly size: number;
  readonly blobs: readonly BlobEntry[];
}

/** One pack of an index file with its entries as stored: `count` × 48 bytes, in the file's buffer. */
export interface RawIndexedPack {
  readonly id: string;
  readonly size: number;
  readonly count: number;
  readonly entries: Buffer;
}

export function encodeIndex(packs: readonly IndexedPack[]): Buffer {
  let total = INDEX_MAGIC.length + 4 + HASH_BYTES;
  for (const p of packs) total += HASH_BYTES + 8 + 4 + p.blobs.length * ENTRY_BYTES;
  const out = Buffer.alloc(total);
  let at = INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(packs.length, at);
  at += 4;
  for (const p of packs) {
    out.write(p.id, at, HASH_BYTES, 'hex');
    at += HASH_BYTES;
    out.writeBigUInt64LE(BigInt(p.size), at);
    at += 8;
    out.writeUInt32LE(p.blobs.length, at);
    at += 4;
    for (const b of p.blobs) {
      encodeEntry(b, out, at);
      at += ENTRY_BYTES;
    }
  }
  hash(out.subarray(0, at)).copy(out, at);
  return out;
}

/**
 * encodeRawIndex is encodeIndex for packs whose entries are already encoded
 * (`count` × 48 bytes each, as in a trailer): the same bytes, without an
 * object per blob.
 */
export function encodeRawIndex(packs: readonly RawIndexedPack[]): Buffer {
  let total = INDEX_MAGIC.length + 4 + HASH_BYTES;
  for (const p of packs) total += HASH_BYTES + 8 + 4 + p.count * ENTRY_BYTES;
  const out = Buffer.alloc(total);
  let at = INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(packs.length, at);
  at += 4;
  for (const p of packs) {
    if (out.write(p.id, at, HASH_BYTES, 'hex') !== HASH_BYTES) throw new Error(`bad pack id ${p.id}`);
    at += HASH_BYTES;
    out.writeBigUInt64LE(BigInt(p.size), at);
    at += 8;
    out.writeUInt32LE(p.count, at);
    at += 4;
    if (p.entries.length !== p.count * ENTRY_BYTES) throw new Error(`pack ${p.id}: ${p.count} entries in ${p.entries.length} bytes`);
    at += p.entries.copy(out, at);
  }
  hash(out.subarray(0, at)).copy(out, at);
  return out;
}

export function decodeIndex(buf: Buffer, where: string): IndexedPack[] {
  return [...indexPacks(buf, where)];
}

/**
 * indexPacks checks an index file whole (magic, checksum, structure, every
 * entry's type and compression), then yields its packs one by one, so a
 * reader holds one pack's entries at a time however many blobs the file
 * lists, and a damaged file yields nothing.
 */
export function* indexPacks(buf: Buffer, where: string): Generator<IndexedPack> {
  for (const p of rawIndexPacks(buf, where)) {
    const blobs: BlobEntry[] = [];
    for (let j = 0; j < p.count; j++) blobs.push(decodeEntry(p.entries, j * ENTRY_BYTES, where));
    yield { id: p.id, size: p.size, blobs };
  }
}

/**
 * rawIndexPacks is indexPacks without decoding the entries: each pack's
 * entries are a view of `buf`, checked (type and compression) like
 * indexPacks checks them, for a reader that copies them as they are.
 */
export function* rawIndexPacks(buf: Buffer, where: string): Generator<RawIndexedPack> {
  const fail = (why: string): never => {
    throw new CorruptionError(`${where}: ${why}`, { where });
  };
  if (buf.length < INDEX_MAGIC.length + 4 + HASH_BYTES) fail('index file is truncated');
  if (!buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) fail('not an index file');
  const body = buf.subarray(0, buf.length - HASH_BYTES);
  if (!hash(body).equals(buf.subarray(buf.length - HASH_BYTES))) fail('index file checksum mismatch (truncated or damaged)');
  const count = body.readUInt32LE(INDEX_MAGIC.length);
  const start = INDEX_MAGIC.length + 4;
  // First pass: structure and entries, nothing allocated.
  let at = start;
  for (let i = 0; i < count; i++) {
    if (at + HASH_BYTES + 12 > body.length) fail('index file is truncated');
    const n = body.readUInt32LE(at + HASH_BYTES + 8);
    at += HASH_BYTES + 12;
    if (at + n * ENTRY_BYTES > body.length) fail('index file is truncated');
    for (let j = 0; j < n; j++, at += ENTRY_BYTES) checkEntry(body, at, where);
  }
  if (at !== body.length) fail('index file has trailing bytes');
  at = start;
  for (let i = 0; i < count; i++) {
    const id = body.toString('hex', at, at + HASH_BYTES);
    const size = Number(body.readBigUInt64LE(at + HASH_BYTES));
    const n = body.readUInt32LE(at + HASH_BYTES + 8);
    at += HASH_BYTES + 12;
    yield { id, size, count: n, entries: body.subarray(at, at + n * ENTRY_BYTES) };
    at += n * ENTRY_BYTES;
  }
}
