/**
 * policy: the pure rules of automatic snapshots, separate from any clock or
 * database so they can be tested exhaustively.
 */

/**
 * The longest automatic-snapshot interval: a year. Anything longer is
 * refused (INVALID_INTERVAL), so every due time stays a date a client can
 * read.
 */
export const MAX_INTERVAL_MS = 365 * 86_400_000;

/**
 * jitterMs spreads due times of many deployments: a fixed offset per
 * deployment of up to 5% of the interval, at most one minute.
 */
export function jitterMs(deploymentId: string, intervalMs: number): number {
  let h = 2166136261;
  for (let i = 0; i < deploymentId.length; i++) h = Math.imul(h ^ deploymentId.charCodeAt(i), 16777619) >>> 0;
  const span = Math.min(Math.floor(intervalMs / 20), 60_000);
  return span > 0 ? h % span : 0;
}

/** nextRunAfter is when the next automatic snapshot is due after one taken (or enabling) at `t`. */
export function nextRunAfter(t: number, deploymentId: string, intervalMs: number): number {
  return t + intervalMs + jitterMs(deploymentId, intervalMs);
}

/**
 * boundedSchedule brings stored settings back within the rules, whatever an
 * older version or a hand edit left in the database: the interval at most
 * MAX_INTERVAL_MS (and at least a second), and a due time from the epoch to no later than
 * one such interval (with jitter) after `now`. Values already within the rules
 * come back unchanged.
 */
export function boundedSchedule(
  deploymentId: string,
  intervalMs: number,
  nextRunAt: number | null,
  now: number,
): { intervalMs: number; nextRunAt: number | null } {
  const interval = Number.isFinite(intervalMs) ? Math.min(MAX_INTERVAL_MS, Math.max(1000, Math.floor(intervalMs))) : MAX_INTERVAL_MS;
  if (nextRunAt === null) return { intervalMs: interval, nextRunAt };
  const latest = nextRunAfter(now, deploymentId, interval);
  return { intervalMs: interval, nextRunAt: Number.isFinite(nextRunAt) ? Math.max(0, Math.min(nextRunAt, latest)) : latest };
}

/** isDue tells whether an enabled deployment's automatic snapshot is due at `now`. */
export function isDue(nextRunAt: number | null, now: number): boolean {
  return nextRunAt !== null && nextRunAt <= now;
}

/** The shortest grace before an automatic snapshot not taken counts as missed. */
export const MIN_MISSED_GRACE_MS = 10 * 60_000;

/**
 * missedGraceMs is how long after its due time an automatic snapshot may
 * still start before it counts as missed: 10% of the interval, at least
 * MIN_MISSED_GRACE_MS.
 */
export function missedGraceMs(intervalMs: number): number {
  return Math.max(MIN_MISSED_GRACE_MS, Math.floor(intervalMs / 10));
}

export interface RetainedSnapshot {
  readonly id: string;
  readonly automatic: boolean;
  readonly status: string;
  readonly createdAt: number;
}

/**
 * pruneVictims returns the automatic snapshots to delete so that at most
 * `retention` ready ones remain: the oldest go first. Manual snapshots are
 * never returned; failed or unfinished ones neither count nor go.
 */
export function pruneVictims<T extends RetainedSnapshot>(snapshots: readonly T[], retention: number): T[] {
  return snapshots
    .filter((s) => s.automatic && s.status === 'ready')
    .sort((a, b) => b.createdAt - a.createdAt)
    .slice(Math.max(0, retention));
}
