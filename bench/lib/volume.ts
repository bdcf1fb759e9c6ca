// Writes a planned benchmark volume to disk, caches it between runs (marker
// file next to it; one directory per volume), and applies / reverts the
// deterministic ~1% mutation.
import {
  closeSync,
  existsSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { BLOCK, PAGE, alignedBuffer, fillRandomBytes, fillRecordPages, randomContent, textContent } from './content.js';
import { GENERATOR_VERSION, SEED, planLayout } from './layout.js';
import type { LargeFile, LargeKind, Layout, SmallFile, VolumeName } from './layout.js';
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
  /** The sparse file, when the volume has one. */
  sparse?: { path: string; logicalBytes: number; dataBytes: number };
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
  name: VolumeName;
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

/** Rewrites `unit`-sized regions (BLOCK, or PAGE of a records file) in place with the given content version. */
function rewriteRegions(root: string, file: LargeFile, offsets: number[], unit: number, version: number): void {
  const fd = openSync(join(root, file.path), 'r+');
  try {
    const buf = alignedBuffer(unit);
    for (const offset of offsets) {
      if (unit === BLOCK) fillBlocks(buf, file.kind, file.seed, offset, version);
      else if (file.kind === 'records' && unit === PAGE) fillRecordPages(buf, file.seed, offset / PAGE, 1, version);
      else throw new Error(`cannot rewrite ${unit}-byte regions of a ${file.kind} file`);
      writeSync(fd, buf, 0, unit, offset);
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
  if (!sparse) return;
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
  const { sparse } = layout;
  const sparseData = sparse ? sparse.extents.length * BLOCK : 0;
  const regular = sum(layout.large) + sum(layout.small);
  return {
    files: layout.large.length + layout.small.length + (sparse ? 1 : 0),
    dirs: layout.dirs.length,
    symlinks: layout.symlinks.length,
    hardlinks: layout.hardlinks.length,
    dataBytes: regular + sparseData,
    apparentBytes: regular + (sparse?.size ?? 0),
    ...(sparse ? { sparse: { path: sparse.path, logicalBytes: sparse.size, dataBytes: sparseData } } : {}),
  };
}

function mutate(root: string, layout: Layout, dataBytes: number): MutationStats {
  const m = layout.mutation;
  for (const r of m.regions) rewriteRegions(root, r.file, r.offsets, r.unit, 1);
  for (const { after } of m.modified) writeSmall(root, after);
  for (const f of m.added) writeSmall(root, f);
  for (const f of m.deleted) rmSync(join(root, f.path));
  const regions = m.regions.reduce((n, r) => n + r.offsets.length, 0);
  const regionBytes = m.regions.reduce((n, r) => n + r.offsets.length * r.unit, 0);
  const sizes = (files: SmallFile[]): number => files.reduce((n, f) => n + f.size, 0);
  const changedBytes = regionBytes + sizes(m.modified.map((x) => x.after)) + sizes(m.added) + sizes(m.deleted);
  return {
    regions,
    regionBytes,
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
  for (const r of m.regions) rewriteRegions(root, r.file, r.offsets, r.unit, 0);
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
 * Returns the pristine volume `name` for `scale` (`<workDir>/volume` for the
 * current one, `<workDir>/volume-<name>` for the others), reusing the cached
 * one when its marker matches and regenerating it otherwise.
 */
export function preparePristineVolume(workDir: string, scale: number, log: (msg: string) => void, name: VolumeName = 'current'): Volume {
  const dir = name === 'current' ? 'volume' : `volume-${name}`;
  const root = join(workDir, dir);
  const markerPath = join(workDir, `${dir}.json`);
  const layout = planLayout(scale, name);
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
    name,
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
