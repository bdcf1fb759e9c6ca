/**
 * disk-health: whether the data directory's filesystem can take writes, for
 * /healthz, /metrics and the logs. Degraded while the filesystem's free
 * space is below the threshold, or since a write failed for lack of space
 * (a snapshot, a restore or the database) until a snapshot or restore next
 * completes. The process keeps serving either way.
 *
 * Threshold: the smaller of 1 GiB and 5% of the filesystem's size.
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Metrics } from './metrics.js';

const MAX_THRESHOLD = 1024 ** 3;
const THRESHOLD_FRACTION = 0.05;

/** Where a write failed for lack of space. */
export type FullWhere = 'repository' | 'restore target' | 'database';

export interface DiskStatus {
  readonly status: 'ok' | 'degraded';
  /** Why it is degraded (empty when ok). */
  readonly reasons: readonly string[];
  /** Free bytes of the data directory's filesystem, null when unknown. */
  readonly freeBytes: number | null;
}

export class DiskHealth {
  private lastFull: { where: FullWhere; at: number } | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** full records a write that failed for lack of space: an error log line and the counter. */
  full(where: FullWhere, err: unknown, context: Record<string, unknown> = {}): void {
    this.lastFull = { where, at: this.clock.now() };
    this.metrics.diskFull.inc({ where });
    this.log.error({ err, where, ...context }, `the disk is full: a write to the ${where} failed`);
  }

  /** written records a completed snapshot or restore: writes succeed again. */
  written(): void {
    this.lastFull = null;
  }

  /** check measures the free space (and sets its gauge) and tells the status. */
  async check(): Promise<DiskStatus> {
    let free: number | null = null;
    const reasons: string[] = [];
    try {
      const st = await fs.statfs(this.dataDir);
      free = st.bavail * st.bsize;
      this.metrics.dataFreeBytes.set({}, free);
      const threshold = Math.min(MAX_THRESHOLD, Math.floor(st.blocks * st.bsize * THRESHOLD_FRACTION));
      if (free < threshold) reasons.push(`the data directory's filesystem has ${free} bytes free, below ${threshold}`);
    } catch (err) {
      reasons.push(`the data directory's free space cannot be read (${(err as Error).message})`);
    }
    if (this.lastFull)
      reasons.push(`a write to the ${this.lastFull.where} failed for lack of space at ${new Date(this.lastFull.at).toISOString()}`);
    return { status: reasons.length ? 'degraded' : 'ok', reasons, freeBytes: free };
  }
}
