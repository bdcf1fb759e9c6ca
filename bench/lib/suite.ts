// The contract between bench/run.ts and a benchmark suite (bench/suites/*.ts).
import type { VolumeName } from './layout.js';

/** Groups of tools a run can be limited to with `--only`. */
export type ToolGroup = 'kova' | 'restic' | 'ref';
export const TOOL_GROUPS: readonly ToolGroup[] = ['kova', 'restic', 'ref'];

export interface SuiteOptions {
  /** Root of this repository (where bin/kova.js lives). */
  repoRoot: string;
  /** Work directory: cached volume, run scratch space, results files. */
  workDir: string;
  /** Volume size factor; 1 is about 2 GB of data. */
  scale: number;
  only: ReadonlySet<ToolGroup>;
  /** Volumes to measure (suites with a single volume use the first). */
  volumes: readonly VolumeName[];
  /** Network suite: minutes the simulated nodes are measured (default: 5 times scale). */
  minutes?: number;
  /** Keep repositories and restored trees after the run. */
  keep: boolean;
  /** Engine suite: interleaved rounds of the restore step (cp -a, then each tool), each reported by its median round. */
  restoreRounds: number;
  /**
   * Engine suite: interleaved rounds of the incremental (each tool), each
   * started from a copy of the tool's repository (and cache) as the
   * no-change snapshot left it, each reported by its median round.
   */
  incrementalRounds: number;
}

export interface Suite {
  description: string;
  /** Runs the suite; resolves to the process exit code. */
  run(options: SuiteOptions): Promise<number>;
}
