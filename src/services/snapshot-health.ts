/**
 * snapshot-health: whether a deployment's automatic snapshots are being
 * taken, for the deployment view's `snapshotHealth` (the dashboard's banner)
 * and the scheduler's snapshot.missed events.
 *
 * An automatic snapshot is missed when its due time passed by more than the
 * grace (policy missedGraceMs: 10% of the interval, at least 10 minutes)
 * and no automatic snapshot was started since: none created at or after the
 * due time has finished (ready or failed) or is being captured. One still
 * waiting in the job queue does not count: it is late. The due times looked
 * at are the one the scheduler last queued (lastDueAt) and the next one
 * (nextRunAt: past and never queued while the server was down).
 */
import { iso } from '../core/clock.js';
import type { SnapshotSettings } from '../db/settings.js';
import type { Store } from '../db/store.js';
import { missedGraceMs } from '../scheduler/policy.js';
import { JobKind } from './context.js';

export type SnapshotHealthStatus = 'ok' | 'failed' | 'overdue';

export interface SnapshotHealth {
  readonly status: SnapshotHealthStatus;
  /** overdue: the due time missed; failed: when the current run of failed automatic snapshots began. */
  readonly since: number | null;
  readonly message: string | null;
}

const OK: SnapshotHealth = { status: 'ok', since: null, message: null };
/** Automatic snapshots looked at to find when a run of failures began. */
const FAILURE_RUN_LIMIT = 50;

/** startedSince tells whether an automatic snapshot created at or after `due` has finished or is being captured. */
export function startedSince(store: Store, depId: string, due: number): boolean {
  const since = store.snapshots.automaticSince(depId, due);
  if (since.some((s) => s.status !== 'creating')) return true;
  if (since.length === 0) return false;
  const creating = new Set(since.map((s) => s.id));
  return store.jobs.activeFor(depId, [JobKind.Snapshot]).some((j) => j.state === 'running' && creating.has(j.payload.snapshotId as string));
}

/**
 * missedDue returns the earliest due time of `s` missed at `now` (see the
 * file's comment) that is later than `after`, or null.
 */
export function missedDue(store: Store, s: SnapshotSettings, now: number, after: number | null = null): number | null {
  if (!s.enabled) return null;
  const grace = missedGraceMs(s.intervalMs);
  for (const due of [s.lastDueAt ?? null, s.nextRunAt]) {
    if (due === null || now <= due + grace || (after !== null && due <= after)) continue;
    if (!startedSince(store, s.deploymentId, due)) return due;
  }
  return null;
}

/**
 * snapshotHealth: `overdue` while an automatic snapshot is missed, else
 * `failed` while the newest finished automatic snapshot failed, else `ok`.
 * Always `ok` while automatic snapshots are off.
 */
export function snapshotHealth(store: Store, depId: string, now: number): SnapshotHealth {
  const s = store.settings.get(depId);
  if (!s.enabled) return OK;
  const due = missedDue(store, s, now);
  if (due !== null) {
    return { status: 'overdue', since: due, message: `the automatic snapshot due at ${iso(due)} has not been taken` };
  }
  const recent = store.snapshots.recentFinishedAutomatic(depId, FAILURE_RUN_LIMIT);
  const newest = recent[0];
  if (newest?.status !== 'failed') return OK;
  let first = newest;
  for (const r of recent) {
    if (r.status !== 'failed') break;
    first = r;
  }
  return { status: 'failed', since: first.createdAt, message: newest.error ?? 'the last automatic snapshot failed' };
}
