// Writes the planned benchmark volume to disk, caches it between runs (marker
// file next to it), and applies / reverts the deterministic ~1% mutation.
import { closeSync, existsSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BLOCK, PAGE, alignedBuffer, fillRandomBytes, fillRecordPages, randomContent, textContent } from './content.js';
import { GENERATOR_VERSION, SEED, planLayout } from './layout.js';
import type { LargeFile, LargeKind, Layout, SmallFile } from './layout.js';
import { mix } from './prng.js';

const BATCH_BLOCKS = 64;

interface Marker {
  generator: number;
  seed: number;
  scale: number;
  state: 'pristine' | 'mutated';
}

export interface VolumeStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Bytes of file data, excluding the sparse file's holes. */
  dataBytes: number;
  /** Sum of file sizes as `ls` shows them (the sparse file counts fully). */
  apparentBytes: number;
  sparse: { path: string; logicalBytes: number; dataBytes: number };
}

export interface MutationStats {
  regions: number;
  regionBytes: number;
  modifiedFiles: number;
  addedFiles: number;
  deletedFiles: number;
  /** Bytes rewritten, added or deleted. */
  changedBytes: number;
  changedPercent: number;
}

export interface Volume {
  root: string;
  stats: VolumeStats;
  mutate(): MutationStats;
  unmutate(): void;
}

/** Fills `out` with `out.length / BLOCK` blocks of `kind` content starting at byte `offset`. */
function fillBlocks(out: Buffer, kind: LargeKind, seed: number, offset: number, version: number): void {
  for (let b = 0; b < out.length / BLOCK; b++) {
    const view = out.subarray(b * BLOCK, (b + 1) * BLOCK);
    const at = offset + b * BLOCK;
    if (kind === 'records') fillRecordPages(view, seed, at / PAGE, BLOCK / PAGE, version);
    else fillRandomBytes(view, mix(seed, at / BLOCK, version));
  }
}

function writeLarge(root: string, file: LargeFile): void {
  const fd = openSync(join(root, file.path), 'w');
  try {
    const buf = alignedBuffer(BATCH_BLOCKS * BLOCK);
    for (let at = 0; at < file.size; at += buf.length) {
      const chunk = buf.subarray(0, Math.min(buf.length, file.size - at));
      fillBlocks(chunk, file.kind, file.seed, at, 0);
      writeSync(fd, chunk, 0, chunk.length, at);
    }
  } finally {
    closeSync(fd);
  }
}

/** Rewrites BLOCK-sized regions in place with the given content version. */
function rewriteRegions(root: string, file: LargeFile, offsets: number[], version: number): void {
  const fd = openSync(join(root, file.path), 'r+');
  try {
    const buf = alignedBuffer(BLOCK);
    for (const offset of offsets) {
      fillBlocks(buf, file.kind, file.seed, offset, version);
      writeSync(fd, buf, 0, BLOCK, offset);
    }
  } finally {
    closeSync(fd);
  }
}

function writeSmall(root: string, file: SmallFile): void {
  const data = file.kind === 'text' ? textContent(file.seed, file.size) : randomContent(file.seed, file.size);
  writeFileSync(join(root, file.path), data);
}

function writeSparse(root: string, layout: Layout): void {
  const { sparse } = layout;
  const fd = openSync(join(root, sparse.path), 'w');
  try {
    const buf = alignedBuffer(BLOCK);
    for (const extent of sparse.extents) {
      fillBlocks(buf, extent.kind, sparse.seed, extent.offset, 0);
      writeSync(fd, buf, 0, BLOCK, extent.offset);
    }
    ftruncateSync(fd, sparse.size);
  } finally {
    closeSync(fd);
  }
}

function generate(root: string, layout: Layout): void {
  mkdirSync(root, { recursive: true });
  for (const dir of layout.dirs) mkdirSync(join(root, dir), { recursive: true });
  for (const file of layout.large) writeLarge(root, file);
  for (const file of layout.small) writeSmall(root, file);
  writeSparse(root, layout);
  for (const link of layout.hardlinks) linkSync(join(root, link.target), join(root, link.path));
  for (const link of layout.symlinks) symlinkSync(link.target, join(root, link.path));
}

function volumeStats(layout: Layout): VolumeStats {
  const sum = (files: { size: number }[]): number => files.reduce((n, f) => n + f.size, 0);
  const sparseData = layout.sparse.extents.length * BLOCK;
  const regular = sum(layout.large) + sum(layout.small);
  return {
    files: layout.large.length + layout.small.length + 1,
    dirs: layout.dirs.length,
    symlinks: layout.symlinks.length,
    hardlinks: layout.hardlinks.length,
    dataBytes: regular + sparseData,
    apparentBytes: regular + layout.sparse.size,
    sparse: { path: layout.sparse.path, logicalBytes: layout.sparse.size, dataBytes: sparseData },
  };
}

function mutate(root: string, layout: Layout, dataBytes: number): MutationStats {
  const m = layout.mutation;
  for (const r of m.regions) rewriteRegions(root, r.file, r.offsets, 1);
  for (const { after } of m.modified) writeSmall(root, after);
  for (const f of m.added) writeSmall(root, f);
  for (const f of m.deleted) rmSync(join(root, f.path));
  const regions = m.regions.reduce((n, r) => n + r.offsets.length, 0);
  const sizes = (files: SmallFile[]): number => files.reduce((n, f) => n + f.size, 0);
  const changedBytes = regions * BLOCK + sizes(m.modified.map((x) => x.after)) + sizes(m.added) + sizes(m.deleted);
  return {
    regions,
    regionBytes: regions * BLOCK,
    modifiedFiles: m.modified.length,
    addedFiles: m.added.length,
    deletedFiles: m.deleted.length,
    changedBytes,
    changedPercent: (100 * changedBytes) / dataBytes,
  };
}

/** Idempotent: also repairs a partially applied mutation. */
function unmutate(root: string, layout: Layout): void {
  const m = layout.mutation;
  for (const r of m.regions) rewriteRegions(root, r.file, r.offsets, 0);
  for (const { before } of m.modified) writeSmall(root, before);
  for (const f of m.added) rmSync(join(root, f.path), { force: true });
  for (const f of m.deleted) writeSmall(root, f);
}

function readMarker(path: string): Marker | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/**
 * Returns the pristine volume `<workDir>/volume` for `scale`, reusing the cached
 * one when its marker matches and regenerating it otherwise.
 */
export function preparePristineVolume(workDir: string, scale: number, log: (msg: string) => void): Volume {
  const root = join(workDir, 'volume');
  const markerPath = join(workDir, 'volume.json');
  const layout = planLayout(scale);
  const stats = volumeStats(layout);
  const writeMarker = (state: Marker['state']): void =>
    writeFileSync(markerPath, JSON.stringify({ generator: GENERATOR_VERSION, seed: SEED, scale, state } satisfies Marker) + '\n');

  const marker = readMarker(markerPath);
  if (marker && marker.generator === GENERATOR_VERSION && marker.seed === SEED && marker.scale === scale && existsSync(root)) {
    if (marker.state === 'mutated') {
      log('volume: reverting the mutation left by an earlier run');
      unmutate(root, layout);
      writeMarker('pristine');
    } else {
      log(`volume: reusing ${root}`);
    }
  } else {
    rmSync(markerPath, { force: true });
    rmSync(root, { recursive: true, force: true });
    mkdirSync(dirname(root), { recursive: true });
    const started = Date.now();
    log(`volume: generating ${root} (scale ${scale}) ...`);
    generate(root, layout);
    writeMarker('pristine');
    log(`volume: generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  return {
    root,
    stats,
    mutate: () => {
      writeMarker('mutated');
      return mutate(root, layout, stats.dataBytes);
    },
    unmutate: () => {
      unmutate(root, layout);
      writeMarker('pristine');
    },
  };
}
