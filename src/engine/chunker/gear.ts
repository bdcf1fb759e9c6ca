/**
 * gear: the chunker's parameters. The 256-entry gear table is derived from a
 * per-repository seed with splitmix64, so chunk boundaries (and thus chunk
 * sizes) of one repository reveal nothing about another's data, and any
 * implementation can rebuild the table from the seed in config.json.
 */

export interface ChunkerParams {
  /** Chunks are never shorter than this, except a file's last chunk. */
  readonly minSize: number;
  /** The size chunks cluster around (normalised chunking). */
  readonly avgSize: number;
  /** Chunks are never longer than this. */
  readonly maxSize: number;
  /** 64-bit seed of the gear table, as 16 hex digits. */
  readonly seed: string;
}

/** Resolved chunker parameters: table and masks ready for the hot loop. */
export interface GearConfig extends ChunkerParams {
  readonly gear: Uint32Array;
  /** Mask applied before avgSize: more bits, so cuts are rarer. */
  readonly maskS: number;
  /** Mask applied after avgSize: fewer bits, so cuts come sooner. */
  readonly maskL: number;
}

/** Defaults: 64 KiB / 128 KiB / 1 MiB. The average is what a file rewritten
 * in place costs: the `db` benchmark volume (an 8.6 GB file, 1% of its 8 KiB
 * pages rewritten at random) touches 27% of its chunks at 256 KiB and 15% at
 * 128 KiB, and its incremental snapshot stored 420 MB instead of 652 MB in
 * 12–13.5 s instead of 15–17 s. At 64 KiB it stored 250 MB, no faster, and
 * its first snapshot's repository was 6% larger (128 KiB: 2%) and its
 * restore 30% slower. The index holds about 8 million entries per TB. */
export const DEFAULT_CHUNKER = { minSize: 64 * 1024, avgSize: 128 * 1024, maxSize: 1024 * 1024 } as const;

const MASK64 = (1n << 64n) - 1n;

/** gearTable expands a seed into 256 pseudo-random 32-bit words (splitmix64). */
export function gearTable(seedHex: string): Uint32Array {
  if (!/^[0-9a-f]{16}$/.test(seedHex)) throw new Error(`bad chunker seed ${JSON.stringify(seedHex)}`);
  let state = BigInt(`0x${seedHex}`);
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z = z ^ (z >> 31n);
    table[i] = Number(z >> 32n);
  }
  return table;
}

/** topMask is a mask of the `bits` highest bits of a 32-bit word. */
function topMask(bits: number): number {
  return ((2 ** bits - 1) * 2 ** (32 - bits)) >>> 0;
}

/** resolveGear validates parameters and computes the table and masks. */
export function resolveGear(p: ChunkerParams): GearConfig {
  const { minSize, avgSize, maxSize } = p;
  if (!(Number.isInteger(minSize) && minSize >= 64 && minSize <= avgSize && avgSize <= maxSize && maxSize <= 64 * 1024 * 1024)) {
    throw new Error(`bad chunker sizes min=${minSize} avg=${avgSize} max=${maxSize}`);
  }
  if (!Number.isInteger(Math.log2(avgSize))) throw new Error(`chunker avgSize ${avgSize} must be a power of two`);
  const bits = Math.log2(avgSize);
  // Normalisation level 2: two bits stricter before avg, two looser after.
  return { ...p, gear: gearTable(p.seed), maskS: topMask(Math.min(31, bits + 2)), maskL: topMask(Math.max(1, bits - 2)) };
}
