// Engine suite: first snapshot, a snapshot with nothing changed, incremental
// snapshot after a ~1% change, full restore, and deletion of the first two
// snapshots with space reclaimed (restic forget --prune), for `kova repo` and restic side by side on each selected
// generated volume (bench/lib/layout.ts), reported volume by volume, with
// cp -a and tar|zstd -1 as references for the disk's limit. With
// KOVA_BENCH_MEMORY=1 each kova step also prints where its memory was at its
// peak RSS: V8 heap, C heap (glibc arenas), ArrayBuffers (bench/lib/memtrace.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskUsage, measure, requireGnuTime, sh } from '../lib/measure.js';
import type { Command, DiskUsage } from '../lib/measure.js';
import { evaluateTargets, rowLine, summary, worstRatios, writeResults } from '../lib/report.js';
import type { EngineResults, RestoreCheck, Row, Step, ToolName, VolumeResults } from '../lib/report.js';
import type { VolumeName } from '../lib/layout.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { kova, restic } from '../lib/tools.js';
import type { SnapshotTool } from '../lib/tools.js';
import { allocatedBytes, compareTrees } from '../lib/verify.js';
import { preparePristineVolume } from '../lib/volume.js';
import type { MutationStats, VolumeStats } from '../lib/volume.js';
import { bytes } from '../lib/report.js';

const ORDER =
  'volume by volume; within one, interleaved by step: tar|zstd, then first snapshots (restic, kova) of the pristine volume; ' +
  'no-change snapshots (restic, kova); mutation; ' +
  'rounds of incrementals (restic, kova), each from a copy of the repositories as the no-change snapshots left them, ' +
  'each reported by its median round; rounds of (cp -a of the mutated volume, restores (restic, kova) into empty directories), ' +
  'each restore reported by its median round; restored trees of a volume of 10,000 entries or more kept until the volume is done ' +
  '(when there is room), so that no restore follows the deletion of a large tree; ' +
  'delete of the first two snapshots + gc (kova) and forget --prune (restic); mutation reverted';

/**
 * Restored trees of a volume with many files stay until the volume is done
 * (the run directory is removed before the next one), as long as the
 * filesystem keeps room for two more: a restore then never creates its
 * files just after half a million others were deleted. On ext4 without a
 * journal (this machine's root filesystem) the inode allocator skips, one
 * by one, the inodes freed in the last minutes (up to six) when it looks
 * for a free one, and a restore run right after the previous round's tree
 * was deleted spent most of its time there: three to four times the system
 * time of the same restore into a filesystem with no recent deletions, and
 * more or less depending on where the new files' inodes land. A journalled
 * ext4, XFS or btrfs do no such thing. Trees of a few files are deleted at
 * once: freeing a few inodes changes nothing.
 */
const KEEP_TREES_FROM_ENTRIES = 10_000;
function keepsRestoredTree(dir: string, stats: VolumeStats): boolean {
  if (stats.files + stats.dirs + stats.symlinks < KEEP_TREES_FROM_ENTRIES) return false;
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize >= 2 * stats.apparentBytes + 4 * 2 ** 30;
}

function describeMutation(m: MutationStats): string {
  return (
    `mutation: ${m.regions} in-place rewrites (${bytes(m.regionBytes)}) in the large files, ` +
    `${m.modifiedFiles} small files modified, ${m.addedFiles} added, ${m.deletedFiles} deleted: ` +
    `${bytes(m.changedBytes)} changed (${m.changedPercent.toFixed(2)}% of the data)`
  );
}

function machine(workDir: string): Record<string, string | number> {
  const firstLine = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
    } catch {
      return 'unavailable';
    }
  };
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    filesystem: firstLine('stat', ['-f', '-c', '%T', workDir]),
    node: process.version,
    restic: firstLine('/usr/bin/restic', ['version']),
    zstd: firstLine('zstd', ['--version']),
  };
}

/** KOVA_BENCH_MEMORY=1: each kova step also prints where its memory was at its peak (bench/lib/memtrace.mjs). */
const MEMORY_TRACE = process.env.KOVA_BENCH_MEMORY === '1';
const MEMTRACE_PRELOAD = fileURLToPath(new URL('../lib/memtrace.mjs', import.meta.url));

interface MemoryPeak {
  rss: number;
  anon: number;
  file: number;
  threads: number;
  heapTotal: number;
  heapUsed: number;
  arrayBuffers: number;
  malloc?: { arenas: number; heapBytes: number; mmapBytes: number; inUseBytes: number; freeBytes: number };
}

/** memoryLines describes each traced process's peak: one line per `kova` command of the step. */
function memoryLines(jsonl: string): string {
  const mb = (n: number): string => `${Math.round(n / 1048576)} MB`;
  return jsonl
    .trim()
    .split('\n')
    .map((line) => {
      const { argv, peak: p } = JSON.parse(line) as { argv: string[]; peak: MemoryPeak };
      const c = p.malloc;
      const heap = c
        ? `C heap ${mb(c.heapBytes + c.mmapBytes)} (${mb(c.inUseBytes)} in use, ${mb(c.freeBytes)} free, ${c.arenas} arenas), `
        : '';
      return (
        `    ${argv.slice(0, 2).join(' ')} at its peak: RSS ${mb(p.rss)} (anonymous ${mb(p.anon)}, file-backed ${mb(p.file)}): ` +
        `V8 heap ${mb(p.heapTotal)} (${mb(p.heapUsed)} used), ${heap}ArrayBuffers ${mb(p.arrayBuffers)}, ${p.threads} threads`
      );
    })
    .join('\n');
}

class EngineRun {
  readonly rows: Row[] = [];
  readonly failures: EngineResults['failures'] = [];
  readonly skipped: EngineResults['skipped'] = [];
  /** The volume being measured. */
  volume: VolumeName = 'current';

  constructor(readonly runDir: string) {}

  /**
   * Measures one step; on failure records it and returns undefined. The row
   * is kept in the results unless `round` is set (a round of a step measured
   * several times: see keepMedian).
   */
  async step(tool: ToolName, step: Step, cmd: Command, sizeOf?: string, round?: number): Promise<{ row: Row; stdout: string } | undefined> {
    try {
      const trace = MEMORY_TRACE && tool === 'kova' ? join(this.runDir, 'memtrace.jsonl') : undefined;
      if (trace) rmSync(trace, { force: true });
      const traced: Command = trace
        ? { ...cmd, env: { ...cmd.env, NODE_OPTIONS: `--import ${MEMTRACE_PRELOAD}`, KOVA_MEMTRACE_OUT: trace } }
        : cmd;
      const { m, stdout } = await measure(traced, this.runDir);
      const repo: DiskUsage | undefined = sizeOf ? diskUsage(sizeOf) : undefined;
      const row: Row = { volume: this.volume, tool, step, m, ...(repo ? { repo } : {}) };
      if (round === undefined) this.rows.push(row);
      console.log(round === undefined ? rowLine(row) : `${rowLine(row)}  (round ${round + 1})`);
      if (trace && existsSync(trace)) console.log(memoryLines(readFileSync(trace, 'utf8')));
      return { row, stdout };
    } catch (err) {
      this.fail(tool, step, err);
      return undefined;
    }
  }

  /** keepMedian keeps the median (by wall time; the lower one of an even count) of a step's rounds. */
  keepMedian(rounds: readonly Row[]): void {
    const median = rounds.slice().sort((a, b) => a.m.wallS - b.m.wallS)[(rounds.length - 1) >> 1];
    if (!median) return;
    const row: Row = { ...median, rounds: rounds.map((x) => x.m.wallS) };
    this.rows.push(row);
    if (rounds.length > 1) console.log(`${rowLine(row)}  (median of rounds: ${row.rounds!.map((w) => `${w.toFixed(2)} s`).join(', ')})`);
  }

  fail(tool: ToolName, step: string, err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    this.failures.push({ volume: this.volume, tool, step, error });
    console.log(`[${this.volume}] [${tool}] ${step} FAILED: ${error}`);
  }
}

interface ToolState {
  tool: SnapshotTool;
  repo: string;
  /** Ids of the tool's first and no-change snapshots: the ones deleted in the delete + gc step. */
  first?: string;
  unchanged?: string;
  /** Id of the tool's latest snapshot: the incremental's parent, then the one restored. */
  latest?: string;
}

async function run(options: SuiteOptions): Promise<number> {
  requireGnuTime();
  const startedAt = new Date().toISOString();
  mkdirSync(options.workDir, { recursive: true });
  const runDir = join(options.workDir, 'run');
  const r = new EngineRun(runDir);

  const tools: SnapshotTool[] = [];
  if (options.only.has('restic')) tools.push(restic(join(runDir, 'restic-cache')));
  if (options.only.has('kova')) tools.push(kova(options.repoRoot));
  const available: SnapshotTool[] = [];
  for (const tool of tools) {
    const reason = tool.unavailable();
    if (reason) {
      r.skipped.push({ tool: tool.name, reason });
      console.log(`[${tool.name}] skipped: ${reason}`);
    } else {
      available.push(tool);
    }
  }
  let refs = options.only.has('ref');
  if (refs && !existsSync('/usr/bin/zstd')) {
    r.skipped.push({ tool: 'tar|zstd -1', reason: 'zstd not found: install it with `apt-get install zstd`' });
    refs = false;
  }
  console.log(`order: ${ORDER}\n`);

  const volumes: VolumeResults[] = [];
  for (const name of options.volumes) {
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true });
    r.volume = name;
    volumes.push(await runVolume(options, r, name, available, refs));
    if (options.keep) console.log(`kept repositories and restored trees of volume ${name} in ${runDir}-${name}`);
    if (options.keep) renameSync(runDir, `${runDir}-${name}`);
  }
  rmSync(runDir, { recursive: true, force: true });

  const results: EngineResults = {
    suite: 'engine',
    startedAt,
    machine: machine(options.workDir),
    scale: options.scale,
    order: ORDER,
    volumes,
    rows: r.rows,
    failures: r.failures,
    skipped: r.skipped,
    worst: worstRatios(r.rows),
  };
  console.log(summary(results));
  console.log(`\nresults: ${writeResults(options.workDir, results)}`);
  const differs = volumes.some((v) => v.restores.some((c) => !c.comparison.contentEqual));
  return r.failures.length > 0 || differs ? 1 : 0;
}

/** runVolume measures every step on one volume. */
async function runVolume(
  options: SuiteOptions,
  r: EngineRun,
  name: VolumeName,
  tools: SnapshotTool[],
  refs: boolean,
): Promise<VolumeResults> {
  const runDir = r.runDir;
  console.log(`\n== volume ${name} ==`);
  const volume = preparePristineVolume(options.workDir, options.scale, console.log, name);
  const source = volume.root;
  const sparsePath = volume.stats.sparse?.path;
  const restores: RestoreCheck[] = [];
  const rowsBefore = r.rows.length;
  let active: ToolState[] = tools.map((tool) => ({ tool, repo: join(runDir, `${tool.name}-repo`) }));

  /** Runs `fn` for each active tool, dropping a tool from later steps when it fails. */
  const eachTool = async (fn: (s: ToolState) => Promise<boolean>): Promise<void> => {
    const next: ToolState[] = [];
    for (const s of active) if (await fn(s)) next.push(s);
    active = next;
  };

  /** Takes a snapshot with `parent` (default the latest); returns its row, or undefined when it failed. */
  const snapshot = async (s: ToolState, step: Step, round?: number, parent = s.latest): Promise<Row | undefined> => {
    const done = await r.step(s.tool.name, step, s.tool.snapshot(s.repo, source, parent), s.repo, round);
    if (!done) return undefined;
    try {
      const snap = s.tool.parseSnapshot(done.stdout);
      done.row.details = snap.details;
      s.latest = snap.id;
      s.first ??= snap.id;
      return done.row;
    } catch (err) {
      r.fail(s.tool.name, step, err);
      return undefined;
    }
  };

  /**
   * The incrementals, in interleaved rounds (each tool in turn): a run of
   * about two seconds varies by ±15% from one to the next on a shared
   * machine, so each tool is reported by its median round. Every round
   * starts from a copy of the tool's repository (and restic's cache) as the
   * no-change snapshot left it, put back before the round and not timed;
   * the repository kept is the last round's, whose snapshot is the one
   * restored.
   */
  const incrementals = async (): Promise<void> => {
    const rounds = options.incrementalRounds;
    const parents = new Map(active.map((s) => [s, s.latest]));
    const saved = new Map(active.map((s) => [s, s.tool.stateDirs(s.repo).map((dir) => [dir, `${dir}.before-incremental`] as const)]));
    const copy = (from: string, to: string): void => {
      rmSync(to, { recursive: true, force: true });
      execFileSync('cp', ['-a', from, to]);
    };
    const measured = new Map<ToolName, Row[]>();
    try {
      if (rounds > 1) for (const dirs of saved.values()) for (const [dir, copyOf] of dirs) copy(dir, copyOf);
      for (let round = 0; round < rounds; round++) {
        await eachTool(async (s) => {
          if (round > 0) for (const [dir, copyOf] of saved.get(s)!) copy(copyOf, dir);
          const row = await snapshot(s, 'incremental', rounds > 1 ? round : undefined, parents.get(s));
          if (row) measured.set(s.tool.name, [...(measured.get(s.tool.name) ?? []), row]);
          return row !== undefined;
        });
      }
    } finally {
      for (const dirs of saved.values()) for (const [, copyOf] of dirs) rmSync(copyOf, { recursive: true, force: true });
    }
    if (rounds > 1) for (const rows of measured.values()) r.keepMedian(rows);
  };

  // 1. Pristine volume: the tar|zstd reference and the first snapshots.
  if (refs) {
    const archive = join(runDir, 'volume.tar.zst');
    await r.step('tar|zstd -1', 'first', { script: `tar -C ${sh(source)} -cf - . | zstd -1 -q -o ${sh(archive)}` }, archive);
  }
  await eachTool(async (s) => {
    try {
      s.tool.init(s.repo);
    } catch (err) {
      r.fail(s.tool.name, 'init', err);
      return false;
    }
    return Boolean(await snapshot(s, 'first'));
  });
  // The same volume again: what a snapshot costs when nothing changed.
  await eachTool(async (s) => {
    if (!(await snapshot(s, 'unchanged'))) return false;
    s.unchanged = s.latest;
    return true;
  });

  // 2. Mutate, incremental snapshots, restores, delete + gc; the volume is reverted even if a step throws.
  const mutation = volume.mutate();
  console.log(describeMutation(mutation));
  let cpAllocated: number | undefined;
  try {
    await incrementals();

    // Restores, in interleaved rounds (cp -a, then each tool): from one run to
    // the next on a shared machine a restore, and cp -a most of all, varies by
    // up to 2x, so each is reported by its median round. Restoring changes no
    // repository, so the rounds measure the same work; the restored trees are
    // compared with the source after the first.
    const rounds = new Map<ToolName, Row[]>();
    const addRound = (row: Row): void => {
      rounds.set(row.tool, [...(rounds.get(row.tool) ?? []), row]);
    };
    const lastRound = options.restoreRounds - 1;
    const done = (tree: string, round: number): void => {
      if (options.keep && round === lastRound) return;
      if (!keepsRestoredTree(runDir, volume.stats)) rmSync(tree, { recursive: true, force: true });
    };
    for (let round = 0; round <= lastRound; round++) {
      if (refs && (round === 0 || rounds.has('cp -a'))) {
        const copy = join(runDir, `cp-a-${round}`);
        const step = await r.step('cp -a', 'restore', { script: `cp -a ${sh(source)} ${sh(copy)}` }, undefined, round);
        if (step) {
          addRound(step.row);
          if (round === 0 && sparsePath) cpAllocated = allocatedBytes(join(copy, sparsePath));
        }
        done(copy, round);
      }
      await eachTool(async (s) => {
        const target = join(runDir, `${s.tool.name}-restore-${round}`);
        const step = await r.step(s.tool.name, 'restore', s.tool.restore(s.repo, s.latest ?? '', target), undefined, round);
        if (!step) return false;
        addRound(step.row);
        if (round === 0) {
          try {
            const restoredRoot = s.tool.restoredRoot(target, source);
            console.log(`[${name}] [${s.tool.name}] comparing the restored tree with the source ...`);
            restores.push({
              tool: s.tool.name,
              comparison: await compareTrees(source, restoredRoot),
              ...(sparsePath ? { sparseAllocatedBytes: allocatedBytes(join(restoredRoot, sparsePath)) } : {}),
            });
          } catch (err) {
            r.fail(s.tool.name, 'verify', err);
          }
        }
        done(target, round);
        return true;
      });
    }
    for (const measured of rounds.values()) r.keepMedian(measured);

    // The first snapshots' data that the incremental still uses stays; the rest is reclaimed.
    const deleted = (s: ToolState): string[] => [s.first ?? '', ...(s.unchanged ? [s.unchanged] : [])];
    await eachTool(async (s) => Boolean(await r.step(s.tool.name, 'delete+gc', s.tool.deleteAndGc(s.repo, deleted(s)), s.repo)));
  } finally {
    volume.unmutate();
  }

  return {
    name,
    stats: volume.stats,
    mutation,
    restores,
    ...(sparsePath ? { sparse: { sourceAllocatedBytes: allocatedBytes(join(source, sparsePath)), cpAllocatedBytes: cpAllocated } } : {}),
    targets: evaluateTargets(r.rows.slice(rowsBefore)),
  };
}

export const engineSuite: Suite = {
  description: 'first / incremental snapshot, restore, delete + gc on each --volume: kova repo vs restic, cp -a and tar|zstd as references',
  run,
};
