/**
 * blob: the unit of storage. A blob is either a chunk of file data or an
 * encoded tree (one directory listing). It is addressed by the BLAKE3 of its
 * uncompressed bytes and stored, compressed with zstd or raw, inside a pack.
 */

export const BlobType = { Data: 0, Tree: 1 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export const Compression = { None: 0, Zstd: 1 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

/** Where a blob lives: its pack and its byte range there. */
export interface BlobLocation {
  readonly type: BlobType;
  readonly compression: Compression;
  /** Pack id (hex). */
  readonly pack: string;
  readonly offset: number;
  /** Stored (possibly compressed) length. */
  readonly length: number;
  /** Uncompressed length. */
  readonly rawLength: number;
}

/** A blob entry as listed in a pack trailer or an index file. */
export interface BlobEntry extends Omit<BlobLocation, 'pack'> {
  /** Blob id: BLAKE3 of the uncompressed bytes, hex. */
  readonly id: string;
}

export function isBlobType(n: number): n is BlobType {
  return n === BlobType.Data || n === BlobType.Tree;
}

export function isCompression(n: number): n is Compression {
  return n === Compression.None || n === Compression.Zstd;
}
