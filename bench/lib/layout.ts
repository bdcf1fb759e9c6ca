// The deterministic plan of the benchmark volume and of its ~1% mutation:
// which directories, files (kind, size, seed), links and sparse extents exist.
// Pure computation from (seed, scale); volume.ts turns it into files.
import { BLOCK } from './content.js';
import { Rng, mix } from './prng.js';

/** Bump when the plan or the content generators change, to invalidate cached volumes. */
export const GENERATOR_VERSION = 1;
export const SEED = 0x4b6f7661;

const MiB = 1024 * 1024;
const LARGE_FILE_BYTES = 448 * MiB;
const SMALL_FILES = 20_000;
const DIRECTORIES = 300;
const MAX_DEPTH = 5;
const HARDLINKS = 50;
const SPARSE_LOGICAL = 1024 * MiB;
const SPARSE_EXTENTS = 128;
const CHURN_FILES = 100;
const CHANGE_FRACTION = 0.01;

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
  /** BLOCK-aligned offsets rewritten in place (file size unchanged). */
  regions: { file: LargeFile; offsets: number[] }[];
  modified: { before: SmallFile; after: SmallFile }[];
  added: SmallFile[];
  deleted: SmallFile[];
}

export interface Layout {
  /** Every directory, parents before children (includes empty ones). */
  dirs: string[];
  large: LargeFile[];
  small: SmallFile[];
  sparse: SparseFile;
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

function smallFile(rng: Rng, dir: string, name: string): SmallFile {
  const kind: SmallKind = rng.int(2) === 0 ? 'text' : 'random';
  const ext = rng.pick(kind === 'text' ? TEXT_EXT : BINARY_EXT);
  return { path: `${dir}/${name}.${ext}`, kind, size: rng.logUniform(100, 64 * 1024), seed: rng.u32() };
}

function distinctInts(rng: Rng, n: number, range: number): number[] {
  const set = new Set<number>();
  while (set.size < Math.min(n, range)) set.add(rng.int(range));
  return [...set].sort((a, b) => a - b);
}

/** Plans the volume for a given scale (1 = about 2 GB of data). */
export function planLayout(scale: number): Layout {
  const rng = new Rng(mix(SEED, GENERATOR_VERSION, Math.round(scale * 1e6)));

  const treeDirs: { path: string; depth: number }[] = [];
  const dirCount = count(DIRECTORIES, scale, 6);
  for (let i = 0; i < dirCount; i++) {
    const candidates = treeDirs.filter((d) => d.depth < MAX_DEPTH);
    const parent = i < 4 || rng.int(10) === 0 ? undefined : rng.pick(candidates);
    const name = `${rng.pick(NAMES)}-${i}`;
    treeDirs.push(parent ? { path: `${parent.path}/${name}`, depth: parent.depth + 1 } : { path: name, depth: 1 });
  }
  const dirs = ['db', 'vm', 'links', 'empty', ...treeDirs.map((d) => d.path)];
  const treePaths = treeDirs.map((d) => d.path);

  const largeSize = roundTo(LARGE_FILE_BYTES * scale, BLOCK, 16 * BLOCK);
  const large: LargeFile[] = (['records', 'records', 'random', 'random'] as const).map((kind, i) => ({
    path: `db/${kind === 'records' ? 'table' : 'blob'}-${i}.db`,
    kind,
    size: largeSize,
    seed: rng.u32(),
  }));

  const small: SmallFile[] = [];
  const smallCount = count(SMALL_FILES, scale, 50);
  for (let i = 0; i < smallCount; i++) small.push(smallFile(rng, rng.pick(treePaths), `f${i}`));

  const sparseSize = roundTo(SPARSE_LOGICAL * scale, MiB, 16 * MiB);
  const slots = distinctInts(rng, count(SPARSE_EXTENTS, scale, 4), sparseSize / BLOCK);
  const sparse: SparseFile = {
    path: 'vm/disk.img',
    size: sparseSize,
    extents: slots.map((slot, i) => ({ offset: slot * BLOCK, kind: i % 2 === 0 ? 'records' : 'random' })),
    seed: rng.u32(),
  };

  // Hard-linked files are never mutated, so every link stays a link.
  const shuffled = rng.shuffled(small);
  const linked = shuffled.slice(0, count(HARDLINKS, scale, 3));
  const hardlinks = linked.map((f) => ({ path: `links/${f.path.split('/').pop() ?? ''}`, target: f.path }));
  const firstLinked = linked[0]?.path ?? '';
  const symlinks: Link[] = [
    { path: 'links/latest', target: `../${firstLinked}` },
    { path: 'links/tables', target: '../db' },
    { path: 'links/dangling', target: '../no/such/file' },
    { path: 'links/absolute', target: '/nonexistent/kova-bench' },
  ];

  const churn = count(CHURN_FILES, scale, 5);
  const modifiedCount = count(SMALL_FILES * CHANGE_FRACTION, scale, 2);
  const rest = shuffled.slice(linked.length);
  const modified = rest.slice(0, modifiedCount).map((before) => ({
    before,
    after: { ...before, size: Math.max(1, Math.round(before.size * (0.9 + rng.float() * 0.2))), seed: rng.u32() },
  }));
  const deleted = rest.slice(modifiedCount, modifiedCount + churn);
  const added = Array.from({ length: churn }, (_, i) => smallFile(rng, rng.pick(treePaths), `new-${i}`));

  // Rewrite ~1% of the large files' bytes, split over one records and one random file.
  const mutatedFiles = [large[0], large[2]].filter((f): f is LargeFile => f !== undefined);
  const blocksPerFile = Math.max(1, Math.round((large.length * largeSize * CHANGE_FRACTION) / BLOCK / mutatedFiles.length));
  const regions = mutatedFiles.map((file) => ({
    file,
    offsets: distinctInts(rng, blocksPerFile, file.size / BLOCK).map((b) => b * BLOCK),
  }));

  return { dirs, large, small, sparse, hardlinks, symlinks, mutation: { regions, modified, added, deleted } };
}
