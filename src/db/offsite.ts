/**
 * offsite: the state of off-node copies (services/offsite-service.ts): each
 * queued snapshot's copy status (the rows not `copied` are the pending
 * copies, resumed after a restart), the snapshot records to delete from a
 * bucket repository, the batched gc due there, and each deployment's choice.
 */
import { Table } from './table.js';

export type OffsiteStatus = 'pending' | 'copying' | 'copied' | 'failed';

export interface OffsiteCopy {
  readonly snapshotId: string;
  readonly deploymentId: string;
  readonly status: OffsiteStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly copiedAt: number | null;
  readonly error: string | null;
  readonly createdAt: number;
}

export interface OffsiteDelete {
  readonly deploymentId: string;
  readonly engineId: string;
  readonly attempts: number;
  readonly nextAttemptAt: number;
}

interface CopyRow {
  snapshot_id: string;
  deployment_id: string;
  status: OffsiteStatus;
  attempts: number;
  next_attempt_at: number;
  copied_at: number | null;
  error: string | null;
  created_at: number;
}

const toCopy = (r: CopyRow): OffsiteCopy => ({
  snapshotId: r.snapshot_id,
  deploymentId: r.deployment_id,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  copiedAt: r.copied_at,
  error: r.error,
  createdAt: r.created_at,
});

export class Offsite extends Table {
  /* ---- copies ---------------------------------------------------------------------- */

  /** queue adds a snapshot to the copies (pending, due at `now`); a snapshot queued already is left as it is. */
  queue(snapshotId: string, deploymentId: string, now: number): void {
    this.q(
      `INSERT INTO offsite_copies (snapshot_id, deployment_id, status, next_attempt_at, created_at)
       VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (snapshot_id) DO NOTHING`,
    ).run(snapshotId, deploymentId, now, now);
  }

  /** insertCopied records a snapshot as copied (a catalogue brought back by recovery). */
  insertCopied(snapshotId: string, deploymentId: string, copiedAt: number): void {
    this.q(
      `INSERT INTO offsite_copies (snapshot_id, deployment_id, status, next_attempt_at, copied_at, created_at)
       VALUES (?, ?, 'copied', ?, ?, ?) ON CONFLICT (snapshot_id) DO NOTHING`,
    ).run(snapshotId, deploymentId, copiedAt, copiedAt, copiedAt);
  }

  get(snapshotId: string): OffsiteCopy | undefined {
    const r = this.q('SELECT * FROM offsite_copies WHERE snapshot_id = ?').get(snapshotId) as CopyRow | undefined;
    return r && toCopy(r);
  }

  /** forDeployment returns a deployment's copies by snapshot id. */
  forDeployment(deploymentId: string): Map<string, OffsiteCopy> {
    const rows = this.q('SELECT * FROM offsite_copies WHERE deployment_id = ?').all(deploymentId) as CopyRow[];
    return new Map(rows.map((r) => [r.snapshot_id, toCopy(r)]));
  }

  /** unfinished returns a deployment's copies not yet `copied`, oldest first. */
  unfinished(deploymentId: string): OffsiteCopy[] {
    return (
      this.q("SELECT * FROM offsite_copies WHERE deployment_id = ? AND status != 'copied' ORDER BY created_at, snapshot_id").all(
        deploymentId,
      ) as CopyRow[]
    ).map(toCopy);
  }

  /** deploymentsWithDueCopies lists the deployments with a copy not `copied` due at or before `now`. */
  deploymentsWithDueCopies(now: number): string[] {
    return (
      this.q("SELECT DISTINCT deployment_id FROM offsite_copies WHERE status != 'copied' AND next_attempt_at <= ?").all(now) as Array<{
        deployment_id: string;
      }>
    ).map((r) => r.deployment_id);
  }

  setStatus(snapshotIds: readonly string[], status: OffsiteStatus, fields: { error?: string | null; copiedAt?: number | null } = {}): void {
    for (const id of snapshotIds) {
      this.q('UPDATE offsite_copies SET status = ?, error = ?, copied_at = COALESCE(?, copied_at) WHERE snapshot_id = ?').run(
        status,
        fields.error ?? null,
        fields.copiedAt ?? null,
        id,
      );
    }
  }

  /** failed records a failed attempt: attempts + 1, due again at `retryAt`. */
  failed(snapshotIds: readonly string[], error: string, retryAt: number): void {
    for (const id of snapshotIds) {
      this.q(
        "UPDATE offsite_copies SET status = 'failed', error = ?, attempts = attempts + 1, next_attempt_at = ? WHERE snapshot_id = ?",
      ).run(error, retryAt, id);
    }
  }

  /** resetInterrupted turns copies a restart interrupted (`copying`) back into `pending`. */
  resetInterrupted(): number {
    return this.q("UPDATE offsite_copies SET status = 'pending' WHERE status = 'copying'").run().changes;
  }

  removeCopy(snapshotId: string): void {
    this.q('DELETE FROM offsite_copies WHERE snapshot_id = ?').run(snapshotId);
  }

  /* ---- deletes and gc ------------------------------------------------------------- */

  queueDelete(deploymentId: string, engineId: string, now: number): void {
    this.q(
      `INSERT INTO offsite_deletes (deployment_id, engine_id, next_attempt_at) VALUES (?, ?, ?)
       ON CONFLICT (deployment_id, engine_id) DO NOTHING`,
    ).run(deploymentId, engineId, now);
  }

  deletes(deploymentId: string): OffsiteDelete[] {
    return (
      this.q('SELECT * FROM offsite_deletes WHERE deployment_id = ? ORDER BY engine_id').all(deploymentId) as Array<{
        deployment_id: string;
        engine_id: string;
        attempts: number;
        next_attempt_at: number;
      }>
    ).map((r) => ({ deploymentId: r.deployment_id, engineId: r.engine_id, attempts: r.attempts, nextAttemptAt: r.next_attempt_at }));
  }

  deploymentsWithDueDeletes(now: number): string[] {
    return (
      this.q('SELECT DISTINCT deployment_id FROM offsite_deletes WHERE next_attempt_at <= ?').all(now) as Array<{ deployment_id: string }>
    ).map((r) => r.deployment_id);
  }

  deleteDone(deploymentId: string, engineId: string): void {
    this.q('DELETE FROM offsite_deletes WHERE deployment_id = ? AND engine_id = ?').run(deploymentId, engineId);
  }

  deleteFailed(deploymentId: string, retryAt: number): void {
    this.q('UPDATE offsite_deletes SET attempts = attempts + 1, next_attempt_at = ? WHERE deployment_id = ?').run(retryAt, deploymentId);
  }

  /** markGcDue makes the bucket repository's gc due at `dueAt` unless it is due already. */
  markGcDue(deploymentId: string, dueAt: number): void {
    this.q('INSERT INTO offsite_gc_due (deployment_id, due_at) VALUES (?, ?) ON CONFLICT (deployment_id) DO NOTHING').run(
      deploymentId,
      dueAt,
    );
  }

  gcDueBy(now: number): string[] {
    return (this.q('SELECT deployment_id FROM offsite_gc_due WHERE due_at <= ?').all(now) as Array<{ deployment_id: string }>).map(
      (r) => r.deployment_id,
    );
  }

  gcDueAt(deploymentId: string): number | null {
    const r = this.q('SELECT due_at FROM offsite_gc_due WHERE deployment_id = ?').get(deploymentId) as { due_at: number } | undefined;
    return r?.due_at ?? null;
  }

  postponeGc(deploymentId: string, dueAt: number): void {
    this.q('UPDATE offsite_gc_due SET due_at = ? WHERE deployment_id = ?').run(dueAt, deploymentId);
  }

  clearGc(deploymentId: string): void {
    this.q('DELETE FROM offsite_gc_due WHERE deployment_id = ?').run(deploymentId);
  }

  /* ---- settings ------------------------------------------------------------------- */

  /** enabled returns the deployment's choice, or null when it made none (the default applies). */
  enabled(deploymentId: string): boolean | null {
    const r = this.q('SELECT enabled FROM offsite_settings WHERE deployment_id = ?').get(deploymentId) as { enabled: number } | undefined;
    return r ? r.enabled === 1 : null;
  }

  setEnabled(deploymentId: string, enabled: boolean): void {
    this.q(
      'INSERT INTO offsite_settings (deployment_id, enabled) VALUES (?, ?) ON CONFLICT (deployment_id) DO UPDATE SET enabled = excluded.enabled',
    ).run(deploymentId, enabled ? 1 : 0);
  }

  /** forgetDeployment drops a closed deployment's pending work and choice (its copies' records go with it). */
  forgetDeployment(deploymentId: string): void {
    this.q('DELETE FROM offsite_copies WHERE deployment_id = ?').run(deploymentId);
    this.q('DELETE FROM offsite_deletes WHERE deployment_id = ?').run(deploymentId);
    this.q('DELETE FROM offsite_gc_due WHERE deployment_id = ?').run(deploymentId);
    this.q('DELETE FROM offsite_settings WHERE deployment_id = ?').run(deploymentId);
  }
}
