/**
 * master-index: the in-memory map from blob id to location, built from all
 * index files and extended as packs are written. A blob may be listed more
 * than once (GC writes its new index before removing old ones); the first
 * location wins, and every listed copy is valid until its pack is deleted.
 * Memory is about 150 bytes per blob: a million blobs (≈250 GB of data in
 * the default 256 KiB chunks) fit in 150 MB.
 */
import type { BlobLocation } from '../format/blob.js';
import type { IndexedPack } from '../format/index-format.js';

export interface PackInfo {
  readonly size: number;
  readonly blobs: number;
}

export class MasterIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  readonly packs = new Map<string, PackInfo>();

  get blobCount(): number {
    return this.blobs.size;
  }

  add(pack: IndexedPack): void {
    this.packs.set(pack.id, { size: pack.size, blobs: pack.blobs.length });
    for (const b of pack.blobs) {
      if (this.blobs.has(b.id)) continue;
      this.blobs.set(b.id, {
        type: b.type,
        compression: b.compression,
        pack: pack.id,
        offset: b.offset,
        length: b.length,
        rawLength: b.rawLength,
      });
    }
  }

  get(id: string): BlobLocation | undefined {
    return this.blobs.get(id);
  }

  has(id: string): boolean {
    return this.blobs.has(id);
  }

  entries(): IterableIterator<[string, BlobLocation]> {
    return this.blobs.entries();
  }
}

/** packName is the storage name of a pack. */
export function packName(id: string): string {
  return `packs/${id.slice(0, 2)}/${id}`;
}
