/**
 * settings-service: automatic snapshot settings, and the scheduler tick that
 * queues due automatic snapshots (and due batched gcs, gc-service.ts).
 *
 * The next run is due one interval after the last automatic snapshot (or
 * after enabling). tick() queues a due snapshot and moves nextRunAt one
 * interval on at once, so a service restart neither resets the schedule nor
 * bursts: an overdue deployment gets one catch-up snapshot. A due snapshot
 * that meets another operation waits in the queue for its turn.
 *
 * Intervals are bounded (policy MAX_INTERVAL_MS); settings read from the
 * database pass through boundedSchedule first, so a value stored by an
 * older version can neither break a read nor schedule past the bound.
 */
import { ValidationError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { SnapshotSettings } from '../db/settings.js';
import { MAX_INTERVAL_MS, boundedSchedule, isDue, nextRunAfter } from '../scheduler/policy.js';
import { JobKind, type ServiceContext } from './context.js';
import type { GcService } from './gc-service.js';
import { activeDeployment } from './guards.js';
import type { SnapshotService } from './snapshot-service.js';

export interface SettingsInput {
  readonly enabled?: boolean;
  readonly interval?: string;
  readonly retention?: number;
}

export class SettingsService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly snapshots: SnapshotService,
    private readonly gc: GcService,
  ) {}

  get(userId: string, depId: string): SnapshotSettings {
    activeDeployment(this.ctx.store, userId, depId);
    return this.stored(depId);
  }

  /** stored reads a deployment's settings, brought within the rules (see boundedSchedule). */
  private stored(depId: string): SnapshotSettings {
    return bounded(this.ctx.store.settings.get(depId), this.ctx.clock.now());
  }

  put(userId: string, depId: string, input: SettingsInput): SnapshotSettings {
    const { store, clock, config } = this.ctx;
    let intervalMs: number | undefined;
    if (input.interval !== undefined) {
      const ms = parseDuration(input.interval);
      if (ms === null)
        throw new ValidationError('INVALID_INTERVAL', 'interval must be a whole number with a unit s, m, h or d, like "30m", "6h" or "7d"');
      if (ms < config.minSnapshotIntervalMs) {
        throw new ValidationError('INVALID_INTERVAL', `interval must be at least ${formatDuration(config.minSnapshotIntervalMs)}`, {
          minInterval: formatDuration(config.minSnapshotIntervalMs),
        });
      }
      if (ms > MAX_INTERVAL_MS) {
        throw new ValidationError('INVALID_INTERVAL', `interval must be at most ${formatDuration(MAX_INTERVAL_MS)}`, {
          maxInterval: formatDuration(MAX_INTERVAL_MS),
        });
      }
      intervalMs = ms;
    }
    if (input.retention !== undefined && !(Number.isInteger(input.retention) && input.retention >= 1 && input.retention <= 100)) {
      throw new ValidationError('INVALID_RETENTION', 'retention must be an integer from 1 to 100');
    }
    return store.tx(() => {
      activeDeployment(store, userId, depId);
      const now = clock.now();
      const cur = bounded(store.settings.get(depId), now);
      const enabled = input.enabled ?? cur.enabled;
      const interval = intervalMs ?? cur.intervalMs;
      let nextRunAt = cur.nextRunAt;
      if (!enabled) nextRunAt = null;
      else if (!cur.enabled || nextRunAt === null) nextRunAt = nextRunAfter(now, depId, interval);
      else if (interval !== cur.intervalMs) nextRunAt = Math.min(nextRunAt, nextRunAfter(now, depId, interval));
      const next: SnapshotSettings = {
        deploymentId: depId,
        enabled,
        intervalMs: interval,
        interval: intervalMs === undefined ? cur.interval : input.interval!,
        retention: input.retention ?? cur.retention,
        nextRunAt,
        updatedAt: now,
      };
      store.settings.put(next);
      return next;
    });
  }

  /** tick queues the automatic snapshots due now, and the batched gcs due (gc-service.ts); returns how many snapshots. */
  tick(): number {
    const { store, clock } = this.ctx;
    const now = clock.now();
    this.gc.tick();
    let queued = 0;
    for (const row of store.settings.enabledList()) {
      const s = bounded(row, now);
      if (s.nextRunAt !== row.nextRunAt) store.settings.setNextRun(s.deploymentId, s.nextRunAt);
      if (!isDue(s.nextRunAt, now)) continue;
      store.tx(() => {
        const waiting = store.jobs
          .activeFor(s.deploymentId, [JobKind.Snapshot])
          .some((j) => store.snapshots.get(j.payload.snapshotId as string)?.trigger === 'automatic');
        if (!waiting) {
          this.snapshots.enqueue(s.deploymentId, 'automatic', null);
          queued++;
        }
        store.settings.setNextRun(s.deploymentId, nextRunAfter(now, s.deploymentId, s.intervalMs));
      });
    }
    return queued;
  }
}

/** bounded applies boundedSchedule to stored settings; the interval text must say the interval, else it is rewritten. */
function bounded(s: SnapshotSettings, now: number): SnapshotSettings {
  const b = boundedSchedule(s.deploymentId, s.intervalMs, s.nextRunAt, now);
  const textOk = s.interval === null || parseDuration(s.interval) === b.intervalMs;
  if (b.intervalMs === s.intervalMs && b.nextRunAt === s.nextRunAt && textOk) return s;
  const interval = textOk ? s.interval : formatDuration(b.intervalMs);
  return { ...s, intervalMs: b.intervalMs, interval, nextRunAt: b.nextRunAt };
}
