/** settings: each deployment's automatic-snapshot settings and next due time, and its verification setting. */
import { Table } from './table.js';

export interface SnapshotSettings {
  readonly deploymentId: string;
  readonly enabled: boolean;
  readonly intervalMs: number;
  /** The interval as set ("24h"); null for rows from before it was kept. */
  readonly interval: string | null;
  readonly retention: number;
  /** Calendar retention tiers (see scheduler/retention); null when not set. */
  readonly keepHourly: number | null;
  readonly keepDaily: number | null;
  readonly keepWeekly: number | null;
  readonly keepMonthly: number | null;
  /** When the next automatic snapshot is due (null when disabled). */
  readonly nextRunAt: number | null;
  readonly updatedAt: number;
  /** The due time the scheduler last queued a snapshot for (null when none since enabling). */
  readonly lastDueAt?: number | null;
  /** The due time a snapshot.missed event was last sent for. */
  readonly missedDueAt?: number | null;
  /** Scheduled verification (services/verification-service.ts); absent: the defaults (DEFAULT_VERIFICATION). */
  readonly verifyEnabled?: boolean;
  readonly verifyIntervalMs?: number;
  /** The verification interval as set ("7d"); null when never set. */
  readonly verifyInterval?: string | null;
}

/** Scheduled verification unless set otherwise: on, weekly. */
export const DEFAULT_VERIFICATION = { enabled: true, intervalMs: 7 * 86_400_000, interval: '7d' } as const;

interface Row {
  deployment_id: string;
  enabled: number;
  interval_ms: number;
  interval_text: string | null;
  retention: number;
  keep_hourly: number | null;
  keep_daily: number | null;
  keep_weekly: number | null;
  keep_monthly: number | null;
  next_run_at: number | null;
  updated_at: number;
  last_due_at: number | null;
  missed_due_at: number | null;
  verify_enabled: number;
  verify_interval_ms: number;
  verify_interval_text: string | null;
}

const toSettings = (r: Row): SnapshotSettings => ({
  deploymentId: r.deployment_id,
  enabled: r.enabled === 1,
  intervalMs: r.interval_ms,
  interval: r.interval_text,
  retention: r.retention,
  keepHourly: r.keep_hourly,
  keepDaily: r.keep_daily,
  keepWeekly: r.keep_weekly,
  keepMonthly: r.keep_monthly,
  nextRunAt: r.next_run_at,
  updatedAt: r.updated_at,
  lastDueAt: r.last_due_at,
  missedDueAt: r.missed_due_at,
  verifyEnabled: r.verify_enabled === 1,
  verifyIntervalMs: r.verify_interval_ms,
  verifyInterval: r.verify_interval_text,
});

export const DEFAULT_SETTINGS = {
  enabled: false,
  intervalMs: 24 * 3_600_000,
  interval: '24h',
  retention: 7,
  keepHourly: null,
  keepDaily: null,
  keepWeekly: null,
  keepMonthly: null,
  verifyEnabled: DEFAULT_VERIFICATION.enabled,
  verifyIntervalMs: DEFAULT_VERIFICATION.intervalMs,
  verifyInterval: null,
} as const;

export class Settings extends Table {
  /** get returns the settings, or the defaults when never set. */
  get(deploymentId: string): SnapshotSettings {
    const r = this.q('SELECT * FROM snapshot_settings WHERE deployment_id = ?').get(deploymentId) as Row | undefined;
    return r ? toSettings(r) : { deploymentId, ...DEFAULT_SETTINGS, nextRunAt: null, updatedAt: 0 };
  }

  put(s: SnapshotSettings): void {
    this.db
      .prepare(
        `INSERT INTO snapshot_settings (deployment_id, enabled, interval_ms, interval_text, retention,
           keep_hourly, keep_daily, keep_weekly, keep_monthly, next_run_at, updated_at,
           verify_enabled, verify_interval_ms, verify_interval_text)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (deployment_id) DO UPDATE SET enabled = excluded.enabled, interval_ms = excluded.interval_ms,
           interval_text = excluded.interval_text, retention = excluded.retention, keep_hourly = excluded.keep_hourly,
           keep_daily = excluded.keep_daily, keep_weekly = excluded.keep_weekly, keep_monthly = excluded.keep_monthly,
           next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
           verify_enabled = excluded.verify_enabled, verify_interval_ms = excluded.verify_interval_ms,
           verify_interval_text = excluded.verify_interval_text,
           last_due_at = CASE WHEN snapshot_settings.enabled = 1 AND excluded.enabled = 1 THEN snapshot_settings.last_due_at END`,
      )
      .run(
        s.deploymentId,
        s.enabled ? 1 : 0,
        s.intervalMs,
        s.interval,
        s.retention,
        s.keepHourly,
        s.keepDaily,
        s.keepWeekly,
        s.keepMonthly,
        s.nextRunAt,
        s.updatedAt,
        (s.verifyEnabled ?? DEFAULT_VERIFICATION.enabled) ? 1 : 0,
        s.verifyIntervalMs ?? DEFAULT_VERIFICATION.intervalMs,
        s.verifyInterval ?? null,
      );
  }

  setNextRun(deploymentId: string, at: number | null): void {
    this.q('UPDATE snapshot_settings SET next_run_at = ? WHERE deployment_id = ?').run(at, deploymentId);
  }

  /** setLastDue records the due time the scheduler just queued a snapshot for. */
  setLastDue(deploymentId: string, at: number): void {
    this.q('UPDATE snapshot_settings SET last_due_at = ? WHERE deployment_id = ?').run(at, deploymentId);
  }

  /** setMissed records that a snapshot.missed event went out for the due time `at`. */
  setMissed(deploymentId: string, at: number): void {
    this.q('UPDATE snapshot_settings SET missed_due_at = ? WHERE deployment_id = ?').run(at, deploymentId);
  }

  /** enabledList returns the enabled settings of active deployments. */
  enabledList(): SnapshotSettings[] {
    return (
      this.db
        .prepare(
          `SELECT s.* FROM snapshot_settings s JOIN deployments d ON d.id = s.deployment_id
           WHERE s.enabled = 1 AND d.status = 'active' ORDER BY s.next_run_at`,
        )
        .all() as Row[]
    ).map(toSettings);
  }

  /**
   * verificationList returns every active deployment's verification setting
   * (the defaults for one whose settings were never set), oldest first.
   */
  verificationList(): Array<{ deploymentId: string; enabled: boolean; intervalMs: number }> {
    return (
      this.q(
        `SELECT d.id, s.verify_enabled, s.verify_interval_ms FROM deployments d
         LEFT JOIN snapshot_settings s ON s.deployment_id = d.id WHERE d.status = 'active' ORDER BY d.created_at, d.id`,
      ).all() as Array<{ id: string; verify_enabled: number | null; verify_interval_ms: number | null }>
    ).map((r) => ({
      deploymentId: r.id,
      enabled: r.verify_enabled === null ? DEFAULT_VERIFICATION.enabled : r.verify_enabled === 1,
      intervalMs: r.verify_interval_ms ?? DEFAULT_VERIFICATION.intervalMs,
    }));
  }

  delete(deploymentId: string): void {
    this.q('DELETE FROM snapshot_settings WHERE deployment_id = ?').run(deploymentId);
  }
}
