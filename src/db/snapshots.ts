/** snapshots: the service's view of each snapshot (the engine holds the data). */
import { Table } from './table.js';

export type SnapshotStatus = 'creating' | 'ready' | 'failed' | 'deleting';
export type SnapshotTrigger = 'manual' | 'automatic' | 'before-update' | 'before-restore';
export type Consistency = 'frozen' | 'live';

export interface Snapshot {
  readonly id: string;
  readonly deploymentId: string;
  readonly label: string | null;
  readonly status: SnapshotStatus;
  readonly trigger: SnapshotTrigger;
  readonly createdAt: number;
  readonly readyAt: number | null;
  /** Id of the snapshot record in the deployment's repository. */
  readonly engineId: string | null;
  readonly sizeBytes: number | null;
  readonly storedBytes: number | null;
  readonly files: number | null;
  readonly consistency: Consistency | null;
  readonly freezeMs: number | null;
  readonly error: string | null;
  readonly warning: string | null;
  readonly progressDone: number | null;
  readonly progressTotal: number | null;
  /** When a verification found damage reaching this snapshot (null: none found); absent in older documents. */
  readonly damagedAt?: number | null;
  /** The off-node copy (not a column: filled in by the snapshot service from db/offsite.ts); null or absent: none. */
  readonly offsite?: SnapshotOffsite | null;
}

/** Where a snapshot's off-node copy stands. */
export interface SnapshotOffsite {
  readonly status: 'pending' | 'copying' | 'copied' | 'failed';
  readonly copiedAt: number | null;
  readonly error: string | null;
}

interface Row {
  id: string;
  deployment_id: string;
  label: string | null;
  status: SnapshotStatus;
  trigger: SnapshotTrigger;
  created_at: number;
  ready_at: number | null;
  engine_id: string | null;
  size_bytes: number | null;
  stored_bytes: number | null;
  files: number | null;
  consistency: Consistency | null;
  freeze_ms: number | null;
  error: string | null;
  warning: string | null;
  progress_done: number | null;
  progress_total: number | null;
  damaged_at: number | null;
}

const toSnapshot = (r: Row): Snapshot => ({
  id: r.id,
  deploymentId: r.deployment_id,
  label: r.label,
  status: r.status,
  trigger: r.trigger,
  createdAt: r.created_at,
  readyAt: r.ready_at,
  engineId: r.engine_id,
  sizeBytes: r.size_bytes,
  storedBytes: r.stored_bytes,
  files: r.files,
  consistency: r.consistency,
  freezeMs: r.freeze_ms,
  error: r.error,
  warning: r.warning,
  progressDone: r.progress_done,
  progressTotal: r.progress_total,
  damagedAt: r.damaged_at,
});

const COLUMNS: Record<string, string> = {
  status: 'status',
  readyAt: 'ready_at',
  engineId: 'engine_id',
  sizeBytes: 'size_bytes',
  storedBytes: 'stored_bytes',
  files: 'files',
  consistency: 'consistency',
  freezeMs: 'freeze_ms',
  error: 'error',
  warning: 'warning',
  progressDone: 'progress_done',
  progressTotal: 'progress_total',
  damagedAt: 'damaged_at',
};

export type SnapshotUpdate = Partial<Omit<Snapshot, 'id' | 'deploymentId' | 'label' | 'trigger' | 'createdAt' | 'offsite'>>;

export class Snapshots extends Table {
  insert(s: Pick<Snapshot, 'id' | 'deploymentId' | 'label' | 'status' | 'trigger' | 'createdAt'>): void {
    this.db
      .prepare('INSERT INTO snapshots (id, deployment_id, label, status, trigger, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(s.id, s.deploymentId, s.label, s.status, s.trigger, s.createdAt);
  }

  get(id: string): Snapshot | undefined {
    const r = this.q('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return r && toSnapshot(r);
  }

  /** inDeployment returns the snapshot only if it belongs to the deployment. */
  inDeployment(deploymentId: string, id: string): Snapshot | undefined {
    const r = this.q('SELECT * FROM snapshots WHERE id = ? AND deployment_id = ?').get(id, deploymentId) as Row | undefined;
    return r && toSnapshot(r);
  }

  /** list returns a deployment's snapshots, newest first. */
  list(deploymentId: string): Snapshot[] {
    return (this.q('SELECT * FROM snapshots WHERE deployment_id = ? ORDER BY created_at DESC, rowid DESC').all(deploymentId) as Row[]).map(
      toSnapshot,
    );
  }

  /** latestReady returns the newest ready snapshot, the parent of the next one. */
  latestReady(deploymentId: string): Snapshot | undefined {
    const r = this.db
      .prepare("SELECT * FROM snapshots WHERE deployment_id = ? AND status = 'ready' ORDER BY created_at DESC, rowid DESC LIMIT 1")
      .get(deploymentId) as Row | undefined;
    return r && toSnapshot(r);
  }

  byStatus(status: SnapshotStatus): Snapshot[] {
    return (this.q('SELECT * FROM snapshots WHERE status = ? ORDER BY created_at').all(status) as Row[]).map(toSnapshot);
  }

  update(id: string, u: SnapshotUpdate): void {
    const keys = Object.keys(u).filter((k) => COLUMNS[k] !== undefined);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => (u as Record<string, unknown>)[k] ?? null);
    this.q(`UPDATE snapshots SET ${sets} WHERE id = ?`).run(...values, id);
  }

  /**
   * markDamaged records that a verification at `at` found damage reaching the
   * deployment's snapshots with these engine ids (a mark already set keeps
   * its time) and returns those snapshots.
   */
  markDamaged(deploymentId: string, engineIds: readonly string[], at: number): Snapshot[] {
    const out: Snapshot[] = [];
    for (const engineId of engineIds) {
      this.q('UPDATE snapshots SET damaged_at = ? WHERE deployment_id = ? AND engine_id = ? AND damaged_at IS NULL').run(
        at,
        deploymentId,
        engineId,
      );
      const r = this.q('SELECT * FROM snapshots WHERE deployment_id = ? AND engine_id = ?').get(deploymentId, engineId) as Row | undefined;
      if (r) out.push(toSnapshot(r));
    }
    return out;
  }

  delete(id: string): void {
    this.q('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  deleteAll(deploymentId: string): void {
    this.q('DELETE FROM snapshots WHERE deployment_id = ?').run(deploymentId);
  }

  /** storage returns the logical and stored bytes of a deployment's ready snapshots. */
  storage(deploymentId: string): { count: number; sizeBytes: number; storedBytes: number } {
    return this.db
      .prepare(
        `SELECT count(*) AS count, coalesce(sum(size_bytes), 0) AS sizeBytes, coalesce(sum(stored_bytes), 0) AS storedBytes
         FROM snapshots WHERE deployment_id = ? AND status = 'ready'`,
      )
      .get(deploymentId) as { count: number; sizeBytes: number; storedBytes: number };
  }

  /** automaticSince returns a deployment's automatic snapshots created at or after `t`, oldest first. */
  automaticSince(deploymentId: string, t: number): Snapshot[] {
    return (
      this.q("SELECT * FROM snapshots WHERE deployment_id = ? AND trigger = 'automatic' AND created_at >= ? ORDER BY created_at").all(
        deploymentId,
        t,
      ) as Row[]
    ).map(toSnapshot);
  }

  /** recentFinishedAutomatic returns a deployment's newest ready or failed automatic snapshots, newest first. */
  recentFinishedAutomatic(deploymentId: string, limit: number): Snapshot[] {
    return (
      this.q(
        `SELECT * FROM snapshots WHERE deployment_id = ? AND trigger = 'automatic' AND status IN ('ready', 'failed')
         ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      ).all(deploymentId, limit) as Row[]
    ).map(toSnapshot);
  }
}
