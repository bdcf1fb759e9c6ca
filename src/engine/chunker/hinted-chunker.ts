/**
 * hinted-chunker: chunks a file that changed since the parent snapshot with
 * the parent's chunks as hints, so the stretches that did not change are
 * hashed but never scanned for boundaries. A database file rewritten in a few
 * pages is read whole, but only the chunks around the rewritten pages are
 * scanned.
 *
 * It cuts at exactly the offsets a plain Chunker would. Content-defined
 * chunking is a function of the bytes from a chunk's start: a scan that starts
 * at offset s over given bytes always ends the chunk at the same offset e. So
 * when s is a cut of the new file (the stream's start, or a cut found since),
 * the parent had a chunk [s, e) that a scan ended (it was followed by another
 * chunk, not by the end of its data), and the new file has the same bytes
 * there (same hash), the scan would cut at e again: the chunk is taken
 * without scanning. Where the hash differs, the scanner runs from s, and
 * after each of its cuts the hints are tried again; usually the one at the
 * end of the changed chunk matches. The work happens in the native pass
 * (scan_hash in native/kova_native.c), one thread-pool job per buffer.
 */
import { Chunker, type NativeHints } from './chunker.js';
import type { GearConfig } from './gear.js';

/** A chunk of the parent, by its offset in the stream (the extent being chunked). */
export interface ChunkHint {
  readonly offset: number;
  readonly length: number;
  readonly id: string;
}

/** What the chunker did, for tests and statistics. */
export interface HintStats {
  /** Bytes taken from verified hints, without a boundary scan. */
  readonly hintedBytes: number;
  /** Bytes that went through the boundary scanner. */
  readonly scannedBytes: number;
  /** Hinted chunks whose hash did not match. */
  readonly misses: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * nativeHints keeps the hints a scan could have produced (between minSize
 * and maxSize long, at a safe offset, a well-formed id), one per offset (the
 * last given wins), sorted by offset.
 */
export function nativeHints(g: GearConfig, hints: readonly ChunkHint[]): NativeHints | null {
  const byOffset = new Map<number, ChunkHint>();
  for (const h of hints) {
    if (Number.isSafeInteger(h.offset) && h.offset >= 0 && h.length >= g.minSize && h.length <= g.maxSize && HEX64.test(h.id)) {
      byOffset.set(h.offset, h);
    }
  }
  if (byOffset.size === 0) return null;
  const sorted = [...byOffset.values()].sort((a, b) => a.offset - b.offset);
  const ids = Buffer.allocUnsafe(32 * sorted.length);
  sorted.forEach((h, i) => ids.write(h.id, 32 * i, 'hex'));
  return {
    offsets: Float64Array.from(sorted, (h) => h.offset),
    lengths: Uint32Array.from(sorted, (h) => h.length),
    ids,
  };
}

export class HintedChunker extends Chunker {
  constructor(g: GearConfig, hints: readonly ChunkHint[]) {
    super(g, nativeHints(g, hints));
  }

  private final: HintStats | null = null;

  /** Statistics of the stream so far, or of the whole stream once finished. */
  get stats(): HintStats {
    if (this.final) return this.final;
    const s = this.nativeStats();
    return { hintedBytes: s.hinted, scannedBytes: s.stream - s.hinted, misses: s.misses };
  }

  override finish(): ReturnType<Chunker['finish']> {
    this.final = this.stats;
    return super.finish();
  }
}

/**
 * hintsFromContent turns a parent file's content into hints for the extent
 * [from, to) of the new file: its chunks that lie within the extent and are
 * followed by another chunk (so a scan, not the end of data, ended them).
 */
export function hintsFromContent(
  content: ReadonlyArray<{ readonly id: string | null; readonly length: number }>,
  from: number,
  to: number,
): ChunkHint[] {
  const out: ChunkHint[] = [];
  let off = 0;
  for (let i = 0; i + 1 < content.length; i++) {
    const c = content[i]!;
    const next = content[i + 1]!;
    if (c.id !== null && next.id !== null && off >= from && off + c.length <= to)
      out.push({ offset: off - from, length: c.length, id: c.id });
    off += c.length;
  }
  return out;
}
