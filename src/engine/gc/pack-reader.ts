/**
 * pack-reader: reads a pack's own description of its blobs (its trailer),
 * without the index. gc and verify use it to cross-check the index and to
 * recover blobs of packs no index lists.
 */
import type { BlobEntry } from '../format/blob.js';
import { ENTRY_BYTES, PACK_FOOTER_BYTES, PACK_HEADER_BYTES, PACK_MAGIC, parseFooter, parseTrailer } from '../format/pack-format.js';
import { CorruptionError } from '../../core/errors.js';
import { packName } from '../repo/master-index.js';
import type { Storage } from '../storage/storage.js';

export async function readPackEntries(storage: Storage, packId: string): Promise<BlobEntry[]> {
  const name = packName(packId);
  const size = await storage.size(name);
  const where = `pack ${packId}`;
  if (size < PACK_HEADER_BYTES + PACK_FOOTER_BYTES) throw new CorruptionError(`${where}: too short to be a pack`, { pack: packId });
  const header = await storage.readAt(name, 0, PACK_MAGIC.length);
  if (!header.equals(PACK_MAGIC)) throw new CorruptionError(`${where}: not a pack`, { pack: packId });
  const footer = await storage.readAt(name, size - PACK_FOOTER_BYTES, PACK_FOOTER_BYTES);
  const { count, trailerHash } = parseFooter(footer, size, where);
  const trailer = await storage.readAt(name, size - PACK_FOOTER_BYTES - count * ENTRY_BYTES, count * ENTRY_BYTES);
  return parseTrailer(trailer, trailerHash, size, where);
}
