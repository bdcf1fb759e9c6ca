/** restores: restore operations and their journal (which step they reached). */
import { Table } from './table.js';

export type RestoreStatus = 'pending' | 'restoring' | 'swapping' | 'completed' | 'failed';

/** What a restore has done, enough to finish or undo it after a crash. */
export interface RestoreJournal {
  /** Staging directory holding the restored volumes until the swap. */
  readonly stagingDir?: string;
  /** Per volume key: inode of the staged directory (swapped once the live path has it). */
  readonly staged?: Readonly<Record<string, string>>;
  /** Set once the swap began: services were stopped. */
  readonly swapStartedAt?: number;
}

/** Where a restore puts each snapshot volume (decided when it is requested). */
export interface RestoreVolumes {
  /** Snapshot volume `from` ("service.volume") goes into current volume `to`; `match`: name, mount or position. */
  readonly pairs: ReadonlyArray<{ readonly from: string; readonly to: string; readonly match: 'name' | 'mount' | 'position' }>;
  /** Current volumes the snapshot does not hold: the restore leaves them as they are. */
  readonly notInSnapshot: readonly string[];
}

/** One chosen path of a restore of selected paths, resolved when it is requested. */
export interface RestoreItem {
  /** As the browse API shows it: "service/volume/dir/file" (merged, no trailing slash). */
  readonly path: string;
  /** Snapshot volume holding it ("service.volume"). */
  readonly from: string;
  /** Current volume it goes into ("service.volume"). */
  readonly to: string;
  /** Its path inside the volume, "/"-separated; "" for the whole volume. */
  readonly rel: string;
}

/** What a restore of selected paths was asked to do (null on a full restore). */
export interface RestoreSelection {
  /** The paths as asked, after merging (one inside another is dropped), in the order given. */
  readonly paths: readonly string[];
  /** replace: in place, services stopped for the swap; alongside: under `into`, nothing stops. */
  readonly mode: 'replace' | 'alongside';
  /** alongside: the folder, relative to the volume, the paths are restored under; null for replace. */
  readonly into: string | null;
  readonly items: readonly RestoreItem[];
}

export interface Restore {
  readonly id: string;
  readonly deploymentId: string;
  readonly snapshotId: string;
  readonly status: RestoreStatus;
  readonly safetySnapshot: boolean;
  readonly safetySnapshotId: string | null;
  /** Null for restores requested before volumes were mapped. */
  readonly volumes: RestoreVolumes | null;
  /** Null for a full restore. */
  readonly selection: RestoreSelection | null;
  readonly journal: RestoreJournal;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly downtimeMs: number | null;
  readonly error: string | null;
  readonly progressDone: number | null;
  readonly progressTotal: number | null;
}

interface Row {
  id: string;
  deployment_id: string;
  snapshot_id: string;
  status: RestoreStatus;
  safety_snapshot: number;
  safety_snapshot_id: string | null;
  volumes: string | null;
  selection: string | null;
  journal: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  downtime_ms: number | null;
  error: string | null;
  progress_done: number | null;
  progress_total: number | null;
}

const toRestore = (r: Row): Restore => ({
  id: r.id,
  deploymentId: r.deployment_id,
  snapshotId: r.snapshot_id,
  status: r.status,
  safetySnapshot: r.safety_snapshot === 1,
  safetySnapshotId: r.safety_snapshot_id,
  volumes: r.volumes ? (JSON.parse(r.volumes) as RestoreVolumes) : null,
  selection: r.selection ? (JSON.parse(r.selection) as RestoreSelection) : null,
  journal: r.journal ? (JSON.parse(r.journal) as RestoreJournal) : {},
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  downtimeMs: r.downtime_ms,
  error: r.error,
  progressDone: r.progress_done,
  progressTotal: r.progress_total,
});

const COLUMNS: Record<string, string> = {
  status: 'status',
  safetySnapshotId: 'safety_snapshot_id',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  downtimeMs: 'downtime_ms',
  error: 'error',
  progressDone: 'progress_done',
  progressTotal: 'progress_total',
};

export type RestoreUpdate = Partial<Omit<Restore, 'id' | 'deploymentId' | 'snapshotId' | 'safetySnapshot' | 'selection' | 'createdAt'>>;

/** Columns stored as JSON. */
const JSON_COLUMNS = new Set(['journal', 'volumes']);

export class Restores extends Table {
  insert(
    r: Pick<Restore, 'id' | 'deploymentId' | 'snapshotId' | 'safetySnapshot' | 'createdAt'> & {
      volumes?: RestoreVolumes | null;
      selection?: RestoreSelection | null;
    },
  ): void {
    this.db
      .prepare(
        "INSERT INTO restores (id, deployment_id, snapshot_id, status, safety_snapshot, volumes, selection, created_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
      )
      .run(
        r.id,
        r.deploymentId,
        r.snapshotId,
        r.safetySnapshot ? 1 : 0,
        r.volumes ? JSON.stringify(r.volumes) : null,
        r.selection ? JSON.stringify(r.selection) : null,
        r.createdAt,
      );
  }

  get(id: string): Restore | undefined {
    const r = this.q('SELECT * FROM restores WHERE id = ?').get(id) as Row | undefined;
    return r && toRestore(r);
  }

  inDeployment(deploymentId: string, id: string): Restore | undefined {
    const r = this.q('SELECT * FROM restores WHERE id = ? AND deployment_id = ?').get(id, deploymentId) as Row | undefined;
    return r && toRestore(r);
  }

  list(deploymentId: string, limit = 50): Restore[] {
    return (
      this.q('SELECT * FROM restores WHERE deployment_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?').all(
        deploymentId,
        limit,
      ) as Row[]
    ).map(toRestore);
  }

  update(id: string, u: RestoreUpdate): void {
    const keys = Object.keys(u).filter((k) => COLUMNS[k] !== undefined || JSON_COLUMNS.has(k));
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${JSON_COLUMNS.has(k) ? k : COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => {
      const v = (u as Record<string, unknown>)[k];
      return JSON_COLUMNS.has(k) ? (v === null || v === undefined ? null : JSON.stringify(v)) : (v ?? null);
    });
    this.q(`UPDATE restores SET ${sets} WHERE id = ?`).run(...values, id);
  }
}
