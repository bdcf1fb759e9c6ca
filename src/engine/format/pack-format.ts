/**
 * pack-format: the byte layout of pack files (docs/format.md, "Packs").
 *
 *   header   "KOVAPACK" | version u8 = 1 | 7 zero bytes           16 bytes
 *   blobs    stored blob bytes, back to back
 *   trailer  one 48-byte entry per blob (see encodeEntry)
 *   footer   entry count u32 | BLAKE3 of the trailer  | "KOVAPEND"  44 bytes
 *
 * A pack describes itself, so the index can always be rebuilt from packs.
 * Its name is the BLAKE3 of the whole file.
 */
import { CorruptionError } from '../../core/errors.js';
import { type BlobEntry, type BlobType, type Compression, isBlobType, isCompression } from './blob.js';
import { HASH_BYTES, hash } from './hash.js';

export const PACK_MAGIC = Buffer.from('KOVAPACK');
export const PACK_END_MAGIC = Buffer.from('KOVAPEND');
export const PACK_VERSION = 1;
export const PACK_HEADER_BYTES = 16;
export const ENTRY_BYTES = 48;
export const PACK_FOOTER_BYTES = 4 + HASH_BYTES + 8;

export function packHeader(): Buffer {
  const h = Buffer.alloc(PACK_HEADER_BYTES);
  PACK_MAGIC.copy(h, 0);
  h[8] = PACK_VERSION;
  return h;
}

/** encodeEntry writes one blob entry: type u8, compression u8, 2 zero bytes,
 * offset u32, length u32, raw length u32, id (32 bytes). */
export function encodeEntry(e: BlobEntry, out: Buffer, at: number): void {
  out[at] = e.type;
  out[at + 1] = e.compression;
  out.writeUInt16LE(0, at + 2);
  out.writeUInt32LE(e.offset, at + 4);
  out.writeUInt32LE(e.length, at + 8);
  out.writeUInt32LE(e.rawLength, at + 12);
  if (out.write(e.id, at + 16, HASH_BYTES, 'hex') !== HASH_BYTES) throw new Error(`bad blob id ${e.id}`);
}

/** checkEntry throws unless the entry at `at` has a known type and compression. */
export function checkEntry(buf: Buffer, at: number, where: string): void {
  if (!isBlobType(buf[at] as number) || !isCompression(buf[at + 1] as number)) {
    throw new CorruptionError(`${where}: unknown blob type or compression`, { where });
  }
}

export function decodeEntry(buf: Buffer, at: number, where: string): BlobEntry {
  checkEntry(buf, at, where);
  const type = buf[at] as BlobType;
  const compression = buf[at + 1] as Compression;
  return {
    type,
    compression,
    offset: buf.readUInt32LE(at + 4),
    length: buf.readUInt32LE(at + 8),
    rawLength: buf.readUInt32LE(at + 12),
    id: buf.toString('hex', at + 16, at + 16 + HASH_BYTES),
  };
}

/** packTrailer encodes the trailer and footer for `entries`. */
export function packTrailer(entries: readonly BlobEntry[]): Buffer {
  const trailer = Buffer.alloc(entries.length * ENTRY_BYTES + PACK_FOOTER_BYTES);
  entries.forEach((e, i) => encodeEntry(e, trailer, i * ENTRY_BYTES));
  const end = entries.length * ENTRY_BYTES;
  trailer.writeUInt32LE(entries.length, end);
  hash(trailer.subarray(0, end)).copy(trailer, end + 4);
  PACK_END_MAGIC.copy(trailer, end + 4 + HASH_BYTES);
  return trailer;
}

/** parseFooter reads the entry count from a pack's last PACK_FOOTER_BYTES. */
export function parseFooter(footer: Buffer, packSize: number, where: string): { count: number; trailerHash: Buffer } {
  if (footer.length !== PACK_FOOTER_BYTES || !footer.subarray(4 + HASH_BYTES).equals(PACK_END_MAGIC)) {
    throw new CorruptionError(`${where}: pack footer is missing or damaged`, { where });
  }
  const count = footer.readUInt32LE(0);
  if (PACK_HEADER_BYTES + count * ENTRY_BYTES + PACK_FOOTER_BYTES > packSize) {
    throw new CorruptionError(`${where}: pack trailer is longer than the pack`, { where });
  }
  return { count, trailerHash: footer.subarray(4, 4 + HASH_BYTES) };
}

/** parseTrailer checks the trailer's hash and the entries' ranges. */
export function parseTrailer(trailer: Buffer, trailerHash: Buffer, packSize: number, where: string): BlobEntry[] {
  if (!hash(trailer).equals(trailerHash)) throw new CorruptionError(`${where}: pack trailer checksum mismatch`, { where });
  const dataEnd = packSize - trailer.length - PACK_FOOTER_BYTES;
  const entries: BlobEntry[] = [];
  for (let at = 0; at < trailer.length; at += ENTRY_BYTES) {
    const e = decodeEntry(trailer, at, where);
    if (e.offset < PACK_HEADER_BYTES || e.offset + e.length > dataEnd) {
      throw new CorruptionError(`${where}: blob ${e.id} lies outside the pack's data`, { where, blob: e.id });
    }
    entries.push(e);
  }
  return entries;
}
