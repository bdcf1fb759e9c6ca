// The deterministic plans of the benchmark volumes and of their ~1% mutation:
// which directories, files (kind, size, seed), links and sparse extents exist.
// Pure computation from (volume, seed, scale); volume.ts turns it into files.
//
// Volumes (sizes at --scale 1):
//   current     the original volume: 4 x 448 MiB tables, 20,000 small files,
//               a 1 GiB sparse file with 8 MiB of data (half the apparent bytes)
//   mixed       no dominant sparse file: 20,000 files of 1-64 KiB (60% text,
//               40% random), 4 x 256 MiB tables (2 random), a 512 MiB sparse
//               file with 8 MiB of data
//   smallfiles  500,000 files of 0-1.5 KB in 2,000 directories
//   db          one 8 GiB database-like file; 1% of its 8 KiB pages rewritten
import { BLOCK, PAGE } from './content.js';
import { Rng, mix } from './prng.js';

/** Bump when the plan or the content generators change, to invalidate cached volumes. */
export const GENERATOR_VERSION = 1;
export const SEED = 0x4b6f7661;

const MiB = 1024 * 1024;
const CHURN_FILES = 100;
const CHANGE_FRACTION = 0.01;

export type VolumeName = 'current' | 'mixed' | 'smallfiles' | 'db';
export const VOLUMES: readonly VolumeName[] = ['current', 'mixed', 'smallfiles', 'db'];

/** What a volume is made of, at scale 1. */
interface Profile {
  /** Size of each large file, and their kinds (one file per kind). */
  largeFileBytes: number;
  largeKinds: readonly LargeKind[];
  smallFiles: number;
  /** Small file sizes: log-uniform when `logSizes`, else uniform, in [smallMin, smallMax]. */
  smallMin: number;
  smallMax: number;
  logSizes: boolean;
  textPercent: number;
  directories: number;
  maxDepth: number;
  hardlinks: number;
  /** 0: no sparse file. */
  sparseLogical: number;
  sparseExtents: number;
  /** Unit of in-place rewrites of the large files: 64 KiB blocks or 8 KiB pages. */
  rewriteUnit: number;
}

export const PROFILES: Record<VolumeName, Profile> = {
  current: {
    largeFileBytes: 448 * MiB,
    largeKinds: ['records', 'records', 'random', 'random'],
    smallFiles: 20_000,
    smallMin: 100,
    smallMax: 64 * 1024,
    logSizes: true,
    textPercent: 50,
    directories: 300,
    maxDepth: 5,
    hardlinks: 50,
    sparseLogical: 1024 * MiB,
    sparseExtents: 128,
    rewriteUnit: BLOCK,
  },
  mixed: {
    largeFileBytes: 256 * MiB,
    largeKinds: ['records', 'records', 'random', 'random'],
    smallFiles: 20_000,
    smallMin: 1024,
    smallMax: 64 * 1024,
    logSizes: true,
    textPercent: 60,
    directories: 300,
    maxDepth: 5,
    hardlinks: 50,
    sparseLogical: 512 * MiB,
    sparseExtents: 128,
    rewriteUnit: BLOCK,
  },
  smallfiles: {
    largeFileBytes: 0,
    largeKinds: [],
    smallFiles: 500_000,
    smallMin: 0,
    smallMax: 1536,
    logSizes: false,
    textPercent: 60,
    directories: 2000,
    maxDepth: 3,
    hardlinks: 50,
    sparseLogical: 0,
    sparseExtents: 0,
    rewriteUnit: BLOCK,
  },
  db: {
    largeFileBytes: 8192 * MiB,
    largeKinds: ['records'],
    smallFiles: 0,
    smallMin: 0,
    smallMax: 0,
    logSizes: false,
    textPercent: 0,
    directories: 0,
    maxDepth: 1,
    hardlinks: 0,
    sparseLogical: 0,
    sparseExtents: 0,
    rewriteUnit: PAGE,
  },
};

export type SmallKind = 'text' | 'random';
export type LargeKind = 'records' | 'random';

export interface SmallFile {
  path: string;
  kind: SmallKind;
  size: number;
  seed: number;
}

export interface LargeFile {
  path: string;
  kind: LargeKind;
  size: number;
  seed: number;
}

export interface SparseExtent {
  offset: number;
  kind: LargeKind;
}

export interface SparseFile {
  path: string;
  size: number;
  /** BLOCK-sized data extents; everything else is a hole. */
  extents: SparseExtent[];
  seed: number;
}

export interface Link {
  path: string;
  target: string;
}

export interface Mutation {
  /** `unit`-aligned offsets rewritten in place (file size unchanged); unit is BLOCK or PAGE. */
  regions: { file: LargeFile; offsets: number[]; unit: number }[];
  modified: { before: SmallFile; after: SmallFile }[];
  added: SmallFile[];
  deleted: SmallFile[];
}

export interface Layout {
  /** Every directory, parents before children (includes empty ones). */
  dirs: string[];
  large: LargeFile[];
  small: SmallFile[];
  /** Absent in volumes without one. */
  sparse?: SparseFile;
  /** New names for existing small files (hard links into links/). */
  hardlinks: Link[];
  symlinks: Link[];
  mutation: Mutation;
}

const TEXT_EXT = ['txt', 'log', 'json', 'conf', 'md', 'py', 'js', 'csv'];
const BINARY_EXT = ['bin', 'dat', 'png', 'gz', 'idx'];
const NAMES = ['cache', 'config', 'data', 'assets', 'logs', 'lib', 'static', 'media', 'tmp', 'uploads', 'backup', 'src'];

function count(base: number, scale: number, min: number): number {
  return Math.max(min, Math.round(base * scale));
}

function roundTo(value: number, unit: number, min: number): number {
  return Math.max(min, Math.round(value / unit) * unit);
}

function smallFile(rng: Rng, p: Profile, dir: string, name: string): SmallFile {
  // The current volume's draws are kept as they were, so its files do not change.
  const text = p.textPercent === 50 ? rng.int(2) === 0 : rng.int(100) < p.textPercent;
  const kind: SmallKind = text ? 'text' : 'random';
  const ext = rng.pick(kind === 'text' ? TEXT_EXT : BINARY_EXT);
  const size = p.logSizes ? rng.logUniform(p.smallMin, p.smallMax) : p.smallMin + rng.int(p.smallMax - p.smallMin + 1);
  return { path: `${dir}/${name}.${ext}`, kind, size, seed: rng.u32() };
}

function distinctInts(rng: Rng, n: number, range: number): number[] {
  const set = new Set<number>();
  while (set.size < Math.min(n, range)) set.add(rng.int(range));
  return [...set].sort((a, b) => a - b);
}

/** Plans a volume for a given scale (1 = the sizes in PROFILES). */
export function planLayout(scale: number, volume: VolumeName = 'current'): Layout {
  const p = PROFILES[volume];
  const base = mix(SEED, GENERATOR_VERSION, Math.round(scale * 1e6));
  const rng = new Rng(volume === 'current' ? base : mix(base, VOLUMES.indexOf(volume), 0));

  const treeDirs: { path: string; depth: number }[] = [];
  const dirCount = p.smallFiles === 0 ? 0 : count(p.directories, scale, 6);
  for (let i = 0; i < dirCount; i++) {
    const candidates = treeDirs.filter((d) => d.depth < p.maxDepth);
    const parent = i < 4 || rng.int(10) === 0 ? undefined : rng.pick(candidates);
    const name = `${rng.pick(NAMES)}-${i}`;
    treeDirs.push(parent ? { path: `${parent.path}/${name}`, depth: parent.depth + 1 } : { path: name, depth: 1 });
  }
  const dirs = ['db', 'vm', 'links', 'empty', ...treeDirs.map((d) => d.path)];
  const treePaths = treeDirs.map((d) => d.path);

  const largeSize = roundTo(p.largeFileBytes * scale, BLOCK, 16 * BLOCK);
  const large: LargeFile[] = p.largeKinds.map((kind, i) => ({
    path: `db/${kind === 'records' ? 'table' : 'blob'}-${i}.db`,
    kind,
    size: largeSize,
    seed: rng.u32(),
  }));

  const small: SmallFile[] = [];
  const smallCount = p.smallFiles === 0 ? 0 : count(p.smallFiles, scale, 50);
  for (let i = 0; i < smallCount; i++) small.push(smallFile(rng, p, rng.pick(treePaths), `f${i}`));

  let sparse: SparseFile | undefined;
  if (p.sparseLogical > 0) {
    const sparseSize = roundTo(p.sparseLogical * scale, MiB, 16 * MiB);
    const slots = distinctInts(rng, count(p.sparseExtents, scale, 4), sparseSize / BLOCK);
    sparse = {
      path: 'vm/disk.img',
      size: sparseSize,
      extents: slots.map((slot, i) => ({ offset: slot * BLOCK, kind: i % 2 === 0 ? 'records' : 'random' })),
      seed: rng.u32(),
    };
  }

  // Hard-linked files are never mutated, so every link stays a link.
  const shuffled = rng.shuffled(small);
  const linked = p.hardlinks === 0 ? [] : shuffled.slice(0, count(p.hardlinks, scale, 3));
  const hardlinks = linked.map((f) => ({ path: `links/${f.path.split('/').pop() ?? ''}`, target: f.path }));
  const firstLinked = linked[0]?.path ?? '';
  const symlinks: Link[] = [
    { path: 'links/latest', target: `../${firstLinked}` },
    { path: 'links/tables', target: '../db' },
    { path: 'links/dangling', target: '../no/such/file' },
    { path: 'links/absolute', target: '/nonexistent/kova-bench' },
  ];

  const churn = smallCount === 0 ? 0 : count(CHURN_FILES * (p.smallFiles / 20_000), scale, 5);
  const modifiedCount = smallCount === 0 ? 0 : count(p.smallFiles * CHANGE_FRACTION, scale, 2);
  const rest = shuffled.slice(linked.length);
  const modified = rest.slice(0, modifiedCount).map((before) => ({
    before,
    after: { ...before, size: Math.max(1, Math.round(before.size * (0.9 + rng.float() * 0.2))), seed: rng.u32() },
  }));
  const deleted = rest.slice(modifiedCount, modifiedCount + churn);
  const added = Array.from({ length: churn }, (_, i) => smallFile(rng, p, rng.pick(treePaths), `new-${i}`));

  // Rewrite ~1% of the large files' bytes, split over one records and one random file (or the only one).
  const unit = p.rewriteUnit;
  const mutatedFiles = (large.length > 2 ? [large[0], large[2]] : large.slice(0, 1)).filter((f): f is LargeFile => f !== undefined);
  const unitsPerFile = Math.max(1, Math.round((large.length * largeSize * CHANGE_FRACTION) / unit / mutatedFiles.length));
  const regions = mutatedFiles.map((file) => ({
    file,
    offsets: distinctInts(rng, unitsPerFile, file.size / unit).map((b) => b * unit),
    unit,
  }));

  return { dirs, large, small, sparse, hardlinks, symlinks, mutation: { regions, modified, added, deleted } };
}
