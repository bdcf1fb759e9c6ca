/**
 * pack-reader: reads a pack's own description of its blobs (its trailer),
 * without the index. gc and verify use it to cross-check the index and to
 * recover blobs of packs no index lists.
 */
import type { BlobEntry } from '../format/blob.js';
import {
  ENTRY_BYTES,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  PACK_MAGIC,
  checkEntry,
  parseFooter,
  parseTrailer,
} from '../format/pack-format.js';
import { hash } from '../format/hash.js';
import { CorruptionError } from '../../core/errors.js';
import { packName } from '../repo/master-index.js';
import type { Storage } from '../storage/storage.js';

/** A pack's trailer as stored: `count` entries of ENTRY_BYTES, checked. */
export interface RawPackEntries {
  readonly size: number;
  readonly count: number;
  readonly entries: Buffer;
}

/** readFooter checks a pack's header and footer and returns its size and the trailer's place and hash. */
async function readFooter(storage: Storage, packId: string, where: string) {
  const name = packName(packId);
  const size = await storage.size(name);
  if (size < PACK_HEADER_BYTES + PACK_FOOTER_BYTES) throw new CorruptionError(`${where}: too short to be a pack`, { pack: packId });
  const header = await storage.readAt(name, 0, PACK_MAGIC.length);
  if (!header.equals(PACK_MAGIC)) throw new CorruptionError(`${where}: not a pack`, { pack: packId });
  const footer = await storage.readAt(name, size - PACK_FOOTER_BYTES, PACK_FOOTER_BYTES);
  const { count, trailerHash } = parseFooter(footer, size, where);
  return { name, size, count, trailerHash };
}

export async function readPackEntries(storage: Storage, packId: string): Promise<BlobEntry[]> {
  const where = `pack ${packId}`;
  const { name, size, count, trailerHash } = await readFooter(storage, packId, where);
  const trailer = await storage.readAt(name, size - PACK_FOOTER_BYTES - count * ENTRY_BYTES, count * ENTRY_BYTES);
  return parseTrailer(trailer, trailerHash, size, where);
}

/**
 * readRawPackEntries is readPackEntries with the same checks (trailer hash,
 * each entry's type, compression and range) that leaves the entries as
 * stored, for gc, which looks at every blob of a repository and would
 * otherwise make an object and a hex id of each.
 */
export async function readRawPackEntries(storage: Storage, packId: string): Promise<RawPackEntries> {
  const where = `pack ${packId}`;
  const { name, size, count, trailerHash } = await readFooter(storage, packId, where);
  const trailer = await storage.readAt(name, size - PACK_FOOTER_BYTES - count * ENTRY_BYTES, count * ENTRY_BYTES);
  if (!hash(trailer).equals(trailerHash)) throw new CorruptionError(`${where}: pack trailer checksum mismatch`, { where });
  const dataEnd = size - trailer.length - PACK_FOOTER_BYTES;
  for (let at = 0; at < trailer.length; at += ENTRY_BYTES) {
    checkEntry(trailer, at, where);
    const offset = trailer.readUInt32LE(at + 4);
    if (offset < PACK_HEADER_BYTES || offset + trailer.readUInt32LE(at + 8) > dataEnd) {
      const id = trailer.toString('hex', at + 16, at + ENTRY_BYTES);
      throw new CorruptionError(`${where}: blob ${id} lies outside the pack's data`, { where, blob: id });
    }
  }
  return { size, count, entries: trailer };
}
