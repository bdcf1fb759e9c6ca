/**
 * codec: blob compression. A blob is compressed with zstd when that saves at
 * least 1/32 of its size; otherwise it is stored raw, which also makes
 * restoring it free of decompression.
 */
import { Compressor, Decompressor } from 'zstd-napi';
import { CorruptionError } from '../../core/errors.js';
import { Compression } from '../format/blob.js';

export interface Encoded {
  readonly stored: Buffer;
  readonly compression: Compression;
  /** Call once `stored` has been copied: its memory is reused. */
  readonly release?: () => void;
}

export class BlobCodec {
  private readonly compressor = new Compressor();
  private readonly decompressor = new Decompressor();

  constructor(level: number) {
    this.compressor.setParameters({ compressionLevel: level });
  }

  encode(raw: Buffer): Encoded {
    if (raw.length < 64) return { stored: raw, compression: Compression.None };
    const z = this.compressor.compress(raw);
    if (z.length <= raw.length - (raw.length >> 5)) return { stored: z, compression: Compression.Zstd };
    return { stored: raw, compression: Compression.None };
  }

  /** decode returns the raw bytes; the caller checks them against the id. */
  decode(stored: Buffer, compression: Compression, rawLength: number, what: string): Buffer {
    if (compression === Compression.None) return stored;
    let raw: Buffer;
    try {
      raw = this.decompressor.decompress(stored);
    } catch (err) {
      throw new CorruptionError(`${what}: compressed data is damaged`, { blob: what }, err);
    }
    if (raw.length !== rawLength)
      throw new CorruptionError(`${what}: decompressed to ${raw.length} bytes, expected ${rawLength}`, { blob: what });
    return raw;
  }
}
