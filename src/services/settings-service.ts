/**
 * settings-service: automatic snapshot settings, and the scheduler tick that
 * queues due automatic snapshots (and due batched gcs, gc-service.ts, and
 * due verifications, verification-service.ts).
 *
 * The next run is due one interval after the last automatic snapshot (or
 * after enabling). tick() queues a due snapshot and moves nextRunAt one
 * interval on at once, so a service restart neither resets the schedule nor
 * bursts: an overdue deployment gets one catch-up snapshot. A due snapshot
 * that meets another operation waits in the queue for its turn.
 *
 * A due time that passes by more than the grace with no automatic snapshot
 * started is reported once as snapshot.missed (snapshot-health.ts).
 *
 * Intervals are bounded (policy MAX_INTERVAL_MS); settings read from the
 * database pass through boundedSchedule first, so a value stored by an
 * older version can neither break a read nor schedule past the bound.
 */
import { iso } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { SnapshotSettings } from '../db/settings.js';
import { MAX_INTERVAL_MS, boundedSchedule, isDue, missedGraceMs, nextRunAfter } from '../scheduler/policy.js';
import { type KeepReason, MAX_TIER, describeRetention, planRetention, retentionPolicy, tierMessage } from '../scheduler/retention.js';
import { JobKind, type ServiceContext } from './context.js';
import type { GcService } from './gc-service.js';
import { activeDeployment } from './guards.js';
import { missedDue } from './snapshot-health.js';
import { MAX_VERIFY_INTERVAL_MS, type VerificationService } from './verification-service.js';
import type { SnapshotService } from './snapshot-service.js';

export interface SettingsInput {
  readonly enabled?: boolean;
  readonly interval?: string;
  readonly retention?: number;
  /** Calendar tiers: a count from 0 to MAX_TIER (scheduler/retention), or null to unset; absent leaves it as it is. */
  readonly keepHourly?: number | null;
  readonly keepDaily?: number | null;
  readonly keepWeekly?: number | null;
  readonly keepMonthly?: number | null;
  /** Off-node copies of this deployment's snapshots (only when the operator configured a target). */
  readonly offsite?: { readonly enabled?: boolean };
  /** Scheduled verification (verification-service.ts); absent fields stay as they are. */
  readonly verification?: { readonly enabled?: boolean; readonly interval?: string };
}

/** A deployment's settings as the API shows them: with its off-node choice (null without a target). */
export type SettingsWithOffsite = SnapshotSettings & { readonly offsite?: { readonly enabled: boolean } | null };

const TIER_FIELDS = ['keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const;

/** What a retention policy would keep and prune among a deployment's existing snapshots. */
export interface RetentionPreview {
  readonly description: string;
  readonly keep: ReadonlyArray<{ readonly id: string; readonly createdAt: number; readonly reasons: readonly KeepReason[] }>;
  readonly prune: ReadonlyArray<{ readonly id: string; readonly createdAt: number }>;
}

export class SettingsService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly snapshots: SnapshotService,
    private readonly gc: GcService,
    private readonly verification?: VerificationService,
  ) {}

  get(userId: string, depId: string): SettingsWithOffsite {
    activeDeployment(this.ctx.store, userId, depId);
    return this.withOffsite(this.stored(depId));
  }

  /** withOffsite adds the deployment's off-node choice: on unless turned off, when a target is configured. */
  private withOffsite(s: SnapshotSettings): SettingsWithOffsite {
    const o = this.ctx.offsite;
    return { ...s, offsite: o?.configured ? { enabled: o.enabledFor(s.deploymentId) } : null };
  }

  /** stored reads a deployment's settings, brought within the rules (see boundedSchedule). */
  private stored(depId: string): SnapshotSettings {
    return bounded(this.ctx.store.settings.get(depId), this.ctx.clock.now());
  }

  put(userId: string, depId: string, input: SettingsInput): SettingsWithOffsite {
    const { store, clock } = this.ctx;
    const intervals = this.validate(input);
    return store.tx(() => {
      activeDeployment(store, userId, depId);
      const next = merged(bounded(store.settings.get(depId), clock.now()), input, intervals, clock.now());
      store.settings.put(next);
      if (input.offsite?.enabled !== undefined) store.offsite.setEnabled(depId, input.offsite.enabled);
      return this.withOffsite(next);
    });
  }

  /**
   * preview says what `input` (validated as put validates it) would keep and
   * prune among the deployment's existing ready automatic snapshots, changing
   * nothing. The next automatic snapshot applies the policy, counting itself
   * as the most recent.
   */
  preview(userId: string, depId: string, input: SettingsInput): RetentionPreview {
    const { store, clock } = this.ctx;
    const intervals = this.validate(input);
    activeDeployment(store, userId, depId);
    const next = merged(this.stored(depId), input, intervals, clock.now());
    const policy = retentionPolicy(next);
    const plan = planRetention(
      store.snapshots.list(depId).map((s) => ({ ...s, automatic: s.trigger === 'automatic' })),
      policy,
    );
    return {
      description: describeRetention(policy),
      keep: plan.keep.map((k) => ({ id: k.snapshot.id, createdAt: k.snapshot.createdAt, reasons: k.reasons })),
      prune: plan.prune.map((s) => ({ id: s.id, createdAt: s.createdAt })),
    };
  }

  /** validate checks `input` and returns its intervals in ms (undefined when not given). */
  private validate(input: SettingsInput): Intervals {
    const { config } = this.ctx;
    let intervalMs: number | undefined;
    let verifyIntervalMs: number | undefined;
    const v = input.verification?.interval;
    if (v !== undefined) {
      const ms = parseDuration(v);
      if (ms === null)
        throw new ValidationError(
          'INVALID_INTERVAL',
          'verification.interval must be a whole number with a unit s, m, h or d, like "1d" or "7d"',
        );
      if (ms < config.minSnapshotIntervalMs || ms > MAX_VERIFY_INTERVAL_MS) {
        throw new ValidationError(
          'INVALID_INTERVAL',
          `verification.interval must be from ${formatDuration(config.minSnapshotIntervalMs)} to ${formatDuration(MAX_VERIFY_INTERVAL_MS)}`,
          { minInterval: formatDuration(config.minSnapshotIntervalMs), maxInterval: formatDuration(MAX_VERIFY_INTERVAL_MS) },
        );
      }
      verifyIntervalMs = ms;
    }
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
    if (input.offsite?.enabled !== undefined && !this.ctx.offsite?.configured) {
      throw new ValidationError(
        'OFFSITE_NOT_CONFIGURED',
        'this server has no off-node target (kova serve --offsite): there is nothing to turn on or off',
      );
    }
    for (const field of TIER_FIELDS) {
      const v = input[field];
      if (v !== undefined && v !== null && !(Number.isInteger(v) && v >= 0 && v <= MAX_TIER)) {
        throw new ValidationError('INVALID_RETENTION', tierMessage(field));
      }
    }
    return { intervalMs, verifyIntervalMs };
  }

  /** tick queues the automatic snapshots due now, and the batched gcs due (gc-service.ts); returns how many snapshots. */
  tick(): number {
    const { store, clock } = this.ctx;
    const now = clock.now();
    this.gc.tick();
    this.tickVerification();
    let queued = 0;
    for (const row of store.settings.enabledList()) {
      const s = bounded(row, now);
      if (s.nextRunAt !== row.nextRunAt) store.settings.setNextRun(s.deploymentId, s.nextRunAt);
      this.reportMissed(s, now);
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
        store.settings.setLastDue(s.deploymentId, s.nextRunAt!);
      });
    }
    return queued;
  }

  /** tickVerification queues the checks due (verification-service.ts); its failure is logged and holds up nothing. */
  private tickVerification(): void {
    try {
      this.verification?.tick();
    } catch (err) {
      this.ctx.log.error({ err }, 'could not queue the verifications due; they are tried again at the next tick');
    }
  }

  /**
   * reportMissed sends snapshot.missed once for each missed due time
   * (snapshot-health.ts), before the tick queues the next snapshot.
   */
  private reportMissed(s: SnapshotSettings, now: number): void {
    const { store, events } = this.ctx;
    const due = missedDue(store, s, now, s.missedDueAt ?? null);
    if (due === null) return;
    store.settings.setMissed(s.deploymentId, due);
    const last = store.snapshots.recentFinishedAutomatic(s.deploymentId, 1)[0];
    events?.emit('snapshot.missed', s.deploymentId, {
      dueAt: iso(due),
      interval: s.interval ?? formatDuration(s.intervalMs),
      graceMs: missedGraceMs(s.intervalMs),
      lastAutomaticSnapshot: last ? { id: last.id, status: last.status, createdAt: iso(last.createdAt) } : null,
    });
  }
}

/** merged is `cur` with the validated `input` applied at `now`: the schedule moves as put documents. */
function merged(cur: SnapshotSettings, input: SettingsInput, intervals: Intervals, now: number): SnapshotSettings {
  const { intervalMs, verifyIntervalMs } = intervals;
  const enabled = input.enabled ?? cur.enabled;
  const interval = intervalMs ?? cur.intervalMs;
  let nextRunAt = cur.nextRunAt;
  if (!enabled) nextRunAt = null;
  else if (!cur.enabled || nextRunAt === null) nextRunAt = nextRunAfter(now, cur.deploymentId, interval);
  else if (interval !== cur.intervalMs) nextRunAt = Math.min(nextRunAt, nextRunAfter(now, cur.deploymentId, interval));
  return {
    deploymentId: cur.deploymentId,
    enabled,
    intervalMs: interval,
    interval: intervalMs === undefined ? cur.interval : input.interval!,
    retention: input.retention ?? cur.retention,
    keepHourly: input.keepHourly === undefined ? cur.keepHourly : input.keepHourly,
    keepDaily: input.keepDaily === undefined ? cur.keepDaily : input.keepDaily,
    keepWeekly: input.keepWeekly === undefined ? cur.keepWeekly : input.keepWeekly,
    keepMonthly: input.keepMonthly === undefined ? cur.keepMonthly : input.keepMonthly,
    nextRunAt,
    updatedAt: now,
    verifyEnabled: input.verification?.enabled ?? cur.verifyEnabled,
    verifyIntervalMs: verifyIntervalMs ?? cur.verifyIntervalMs,
    verifyInterval: verifyIntervalMs === undefined ? cur.verifyInterval : input.verification!.interval!,
  };
}

/** The intervals a settings change gives, in ms (undefined: not given). */
interface Intervals {
  readonly intervalMs: number | undefined;
  readonly verifyIntervalMs: number | undefined;
}

/** bounded applies boundedSchedule to stored settings; the interval text must say the interval, else it is rewritten. */
export function bounded(s: SnapshotSettings, now: number): SnapshotSettings {
  const b = boundedSchedule(s.deploymentId, s.intervalMs, s.nextRunAt, now);
  const textOk = s.interval === null || parseDuration(s.interval) === b.intervalMs;
  if (b.intervalMs === s.intervalMs && b.nextRunAt === s.nextRunAt && textOk) return s;
  const interval = textOk ? s.interval : formatDuration(b.intervalMs);
  return { ...s, intervalMs: b.intervalMs, interval, nextRunAt: b.nextRunAt };
}
