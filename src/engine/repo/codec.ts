/**
 * codec: blob compression. A blob is compressed with zstd when that saves at
 * least 1/32 of its size; otherwise it is stored raw, which also makes
 * restoring it free of decompression.
 *
 * Compression writes into output buffers kept for reuse (handed back by
 * Encoded.release): a fresh buffer per blob, as zstd-napi's Compressor
 * allocates for any output over three quarters of the input's bound, cost
 * a page fault per 4 KiB of it, more than compressing incompressible data.
 */
import { createRequire } from 'node:module';
import { Decompressor } from 'zstd-napi';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { CorruptionError } from '../../core/errors.js';
import { Compression } from '../format/blob.js';
import { TransferBuffers } from '../util/transfer-buffers.js';

export interface Encoded {
  readonly stored: Buffer;
  readonly compression: Compression;
  /** Call once `stored` has been copied: its memory is reused. */
  readonly release?: () => void;
}

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;

/** Bytes of output buffers kept for reuse (a few blobs' worth are held at once). */
const KEEP_OUTPUT_BYTES = 8 * 1024 * 1024;

export class BlobCodec {
  private readonly cctx = new zstd.CCtx();
  private readonly decompressor = new Decompressor();
  private readonly outputs = new TransferBuffers(KEEP_OUTPUT_BYTES);

  constructor(private readonly level: number) {}

  encode(raw: Buffer): Encoded {
    if (raw.length < 64) return { stored: raw, compression: Compression.None };
    const out = this.outputs.take(zstd.compressBound(raw.length));
    const n = this.cctx.compress(new Uint8Array(out), raw, this.level);
    if (n > raw.length - (raw.length >> 5)) {
      this.outputs.give(out);
      return { stored: raw, compression: Compression.None };
    }
    let held = true;
    const release = (): void => {
      if (held) this.outputs.give(out);
      held = false;
    };
    return { stored: Buffer.from(out, 0, n), compression: Compression.Zstd, release };
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
