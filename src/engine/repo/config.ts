/**
 * config: the repository's config file, written once by init. It fixes the
 * format version, the chunker's parameters (seed included) and the pack and
 * compression settings every writer must use.
 */
import { randomBytes } from 'node:crypto';
import { CorruptionError } from '../../core/errors.js';
import { type ChunkerParams, DEFAULT_CHUNKER, resolveGear } from '../chunker/gear.js';

/** 2: objects are named by BLAKE3 (version 1 used SHA-256). */
export const FORMAT_VERSION = 2;
export const CONFIG_NAME = 'config';

export interface RepoConfig {
  readonly version: number;
  /** Random id of this repository. */
  readonly id: string;
  readonly createdAt: string;
  readonly chunker: ChunkerParams;
  /** Packs are closed once they reach this many bytes. */
  readonly packSize: number;
  /** zstd level for blobs that compress; incompressible blobs are stored raw. */
  readonly compressionLevel: number;
}

export interface InitOptions {
  /** Chunk sizes; the seed is always random. Defaults: DEFAULT_CHUNKER. */
  readonly chunker?: Partial<Omit<ChunkerParams, 'seed'>>;
  /** Default 16 MiB: few enough files for large volumes, small enough to repack cheaply. */
  readonly packSize?: number;
  /** Default 3: zstd's default level, as fast as level 1 on incompressible data here. */
  readonly compressionLevel?: number;
}

export function newConfig(opts: InitOptions = {}): RepoConfig {
  const chunker: ChunkerParams = {
    minSize: opts.chunker?.minSize ?? DEFAULT_CHUNKER.minSize,
    avgSize: opts.chunker?.avgSize ?? DEFAULT_CHUNKER.avgSize,
    maxSize: opts.chunker?.maxSize ?? DEFAULT_CHUNKER.maxSize,
    seed: randomBytes(8).toString('hex'),
  };
  resolveGear(chunker); // validates
  const packSize = opts.packSize ?? 16 * 1024 * 1024;
  // Level 2, not zstd's default 3: on blobs of at most maxSize (1 MiB) the
  // larger match tables of level 3 find little more (the benchmark volumes'
  // repositories were 0.5% larger to 1.9% smaller at level 3) and cost 10%
  // to 25% more time, the largest share of a first snapshot's CPU.
  const compressionLevel = opts.compressionLevel ?? 2;
  if (!(Number.isInteger(packSize) && packSize >= 4096 && packSize <= 1024 * 1024 * 1024)) throw new Error(`bad pack size ${packSize}`);
  if (!(Number.isInteger(compressionLevel) && compressionLevel >= 1 && compressionLevel <= 19)) {
    throw new Error(`bad compression level ${compressionLevel}`);
  }
  return {
    version: FORMAT_VERSION,
    id: randomBytes(16).toString('hex'),
    createdAt: new Date().toISOString(),
    chunker,
    packSize,
    compressionLevel,
  };
}

export function parseConfig(buf: Buffer): RepoConfig {
  let c: RepoConfig;
  try {
    c = JSON.parse(buf.toString('utf8')) as RepoConfig;
  } catch (err) {
    throw new CorruptionError('repository config is not valid JSON', {}, err);
  }
  if (c.version !== FORMAT_VERSION) {
    throw new CorruptionError(`unsupported repository format version ${String(c.version)} (this kova reads version ${FORMAT_VERSION})`);
  }
  try {
    resolveGear(c.chunker);
  } catch (err) {
    throw new CorruptionError('repository config has bad chunker parameters', {}, err);
  }
  return c;
}
