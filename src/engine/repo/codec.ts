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

export interface Encoded {
  readonly stored: Buffer;
  readonly compression: Compression;
  /** Call once `stored` has been copied: its memory is reused. */
  readonly release?: () => void;
}

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;

/** Output buffers kept for reuse, and the largest one kept (bigger outputs are rare: large trees). */
const KEEP_OUTPUTS = 8;
const KEEP_OUTPUT_BYTES = 4 * 1024 * 1024;

export class BlobCodec {
  private readonly cctx = new zstd.CCtx();
  private readonly decompressor = new Decompressor();
  private readonly outputs: Buffer[] = [];

  constructor(private readonly level: number) {}

  encode(raw: Buffer): Encoded {
    if (raw.length < 64) return { stored: raw, compression: Compression.None };
    const bound = zstd.compressBound(raw.length);
    const i = this.outputs.findIndex((b) => b.length >= bound);
    const out = i >= 0 ? this.outputs.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(bound);
    const n = this.cctx.compress(out, raw, this.level);
    if (n > raw.length - (raw.length >> 5)) {
      this.keep(out);
      return { stored: raw, compression: Compression.None };
    }
    let held = true;
    const release = (): void => {
      if (held) this.keep(out);
      held = false;
    };
    return { stored: out.subarray(0, n), compression: Compression.Zstd, release };
  }

  private keep(out: Buffer): void {
    if (out.length > KEEP_OUTPUT_BYTES) return;
    if (this.outputs.length >= KEEP_OUTPUTS) {
      // Keep the larger buffers: they fit every blob.
      const smallest = this.outputs.reduce((m, b, j) => (b.length < this.outputs[m]!.length ? j : m), 0);
      if (this.outputs[smallest]!.length >= out.length) return;
      this.outputs.splice(smallest, 1);
    }
    this.outputs.push(out);
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
