// Engine suite: first snapshot, incremental snapshot after a ~1% change, and
// full restore, for `kova repo` and restic side by side on the same generated
// volume, with cp -a and tar|zstd -1 as references for the disk's limit.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { diskUsage, measure, requireGnuTime, sh } from '../lib/measure.js';
import type { Command, DiskUsage } from '../lib/measure.js';
import { bytes, evaluateTargets, rowLine, summary, writeResults } from '../lib/report.js';
import type { EngineResults, RestoreCheck, Row, Step, ToolName } from '../lib/report.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { kova, restic } from '../lib/tools.js';
import type { SnapshotTool } from '../lib/tools.js';
import { allocatedBytes, compareTrees } from '../lib/verify.js';
import { preparePristineVolume } from '../lib/volume.js';
import type { MutationStats, VolumeStats } from '../lib/volume.js';

const ORDER =
  'interleaved by step: tar|zstd, then first snapshots (restic, kova) of the pristine volume; mutation; ' +
  'incrementals (restic, kova); cp -a of the mutated volume; restores (restic, kova) into empty directories; mutation reverted';

function describeVolume(v: VolumeStats): string {
  return (
    `volume: ${v.files} files in ${v.dirs} directories (one empty), ${v.hardlinks} hard links, ${v.symlinks} symlinks; ` +
    `${bytes(v.dataBytes)} of data excluding holes, ${bytes(v.apparentBytes)} apparent ` +
    `(counting the ${bytes(v.sparse.logicalBytes)} sparse file ${v.sparse.path} fully)`
  );
}

function describeMutation(m: MutationStats): string {
  return (
    `mutation: ${m.regions} in-place 64 KiB rewrites (${bytes(m.regionBytes)}) in 2 large files, ` +
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

class EngineRun {
  readonly rows: Row[] = [];
  readonly failures: EngineResults['failures'] = [];
  readonly skipped: EngineResults['skipped'] = [];
  readonly restores: RestoreCheck[] = [];

  constructor(private readonly runDir: string) {}

  /** Measures one step; on failure records it and returns undefined. */
  async step(tool: ToolName, step: Step, cmd: Command, sizeOf?: string): Promise<{ row: Row; stdout: string } | undefined> {
    try {
      const { m, stdout } = await measure(cmd, this.runDir);
      const repo: DiskUsage | undefined = sizeOf ? diskUsage(sizeOf) : undefined;
      const row: Row = { tool, step, m, ...(repo ? { repo } : {}) };
      this.rows.push(row);
      console.log(rowLine(row));
      return { row, stdout };
    } catch (err) {
      this.fail(tool, step, err);
      return undefined;
    }
  }

  fail(tool: ToolName, step: string, err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    this.failures.push({ tool, step, error });
    console.log(`[${tool}] ${step} FAILED: ${error}`);
  }
}

interface ToolState {
  tool: SnapshotTool;
  repo: string;
  /** Id of the tool's latest snapshot: the incremental's parent, then the one restored. */
  latest?: string;
}

async function run(options: SuiteOptions): Promise<number> {
  requireGnuTime();
  const startedAt = new Date().toISOString();
  mkdirSync(options.workDir, { recursive: true });
  const volume = preparePristineVolume(options.workDir, options.scale, console.log);
  console.log(describeVolume(volume.stats));
  const source = volume.root;

  const runDir = join(options.workDir, 'run');
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const r = new EngineRun(runDir);

  const candidates: SnapshotTool[] = [];
  if (options.only.has('restic')) candidates.push(restic(join(runDir, 'restic-cache')));
  if (options.only.has('kova')) candidates.push(kova(options.repoRoot));
  let active: ToolState[] = [];
  for (const tool of candidates) {
    const reason = tool.unavailable();
    if (reason) {
      r.skipped.push({ tool: tool.name, reason });
      console.log(`[${tool.name}] skipped: ${reason}`);
    } else {
      active.push({ tool, repo: join(runDir, `${tool.name}-repo`) });
    }
  }
  let refs = options.only.has('ref');
  if (refs && !existsSync('/usr/bin/zstd')) {
    r.skipped.push({ tool: 'tar|zstd -1', reason: 'zstd not found: install it with `apt-get install zstd`' });
    refs = false;
  }
  console.log(`order: ${ORDER}\n`);

  /** Runs `fn` for each active tool, dropping a tool from later steps when it fails. */
  const eachTool = async (fn: (s: ToolState) => Promise<boolean>): Promise<void> => {
    const next: ToolState[] = [];
    for (const s of active) if (await fn(s)) next.push(s);
    active = next;
  };

  const snapshot = async (s: ToolState, step: Step): Promise<boolean> => {
    const done = await r.step(s.tool.name, step, s.tool.snapshot(s.repo, source, s.latest), s.repo);
    if (!done) return false;
    try {
      const snap = s.tool.parseSnapshot(done.stdout);
      done.row.details = snap.details;
      s.latest = snap.id;
      return true;
    } catch (err) {
      r.fail(s.tool.name, step, err);
      return false;
    }
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
    return snapshot(s, 'first');
  });

  // 2. Mutate, incremental snapshots, restores; the volume is reverted even if a step throws.
  const mutation = volume.mutate();
  console.log(describeMutation(mutation));
  let cpAllocated: number | undefined;
  try {
    await eachTool((s) => snapshot(s, 'incremental'));

    if (refs) {
      const copy = join(runDir, 'cp-a');
      if (await r.step('cp -a', 'restore', { script: `cp -a ${sh(source)} ${sh(copy)}` })) {
        cpAllocated = allocatedBytes(join(copy, volume.stats.sparse.path));
      }
    }
    await eachTool(async (s) => {
      const target = join(runDir, `${s.tool.name}-restore`);
      if (!(await r.step(s.tool.name, 'restore', s.tool.restore(s.repo, s.latest ?? '', target)))) return false;
      try {
        const restoredRoot = s.tool.restoredRoot(target, source);
        console.log(`[${s.tool.name}] comparing the restored tree with the source ...`);
        r.restores.push({
          tool: s.tool.name,
          comparison: await compareTrees(source, restoredRoot),
          sparseAllocatedBytes: allocatedBytes(join(restoredRoot, volume.stats.sparse.path)),
        });
      } catch (err) {
        r.fail(s.tool.name, 'verify', err);
      }
      return true;
    });
  } finally {
    volume.unmutate();
  }

  const results: EngineResults = {
    suite: 'engine',
    startedAt,
    machine: machine(options.workDir),
    scale: options.scale,
    volume: volume.stats,
    mutation,
    order: ORDER,
    rows: r.rows,
    failures: r.failures,
    skipped: r.skipped,
    sparse: { sourceAllocatedBytes: allocatedBytes(join(source, volume.stats.sparse.path)), cpAllocatedBytes: cpAllocated },
    restores: r.restores,
    targets: evaluateTargets(r.rows),
  };
  console.log(summary(results));
  console.log(`\nresults: ${writeResults(options.workDir, results)}`);
  if (options.keep) console.log(`kept repositories and restored trees in ${runDir}`);
  else rmSync(runDir, { recursive: true, force: true });
  const differs = r.restores.some((c) => !c.comparison.contentEqual);
  return r.failures.length > 0 || differs ? 1 : 0;
}

export const engineSuite: Suite = {
  description: 'first / incremental snapshot and restore: kova repo vs restic, cp -a and tar|zstd as references',
  run,
};
