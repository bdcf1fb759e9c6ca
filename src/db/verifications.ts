/**
 * verifications: every scheduled or requested check of a deployment's stored
 * data (services/verification-service.ts), and where each deployment's
 * rotation through the parts of its data stands.
 */
import { Table } from './table.js';

export type VerificationStatus = 'queued' | 'running' | 'ok' | 'failed';
export type VerificationTrigger = 'scheduled' | 'manual';

/** One problem a check found, as the engine reported it. */
export interface VerificationFinding {
  readonly kind: string;
  readonly message: string;
  readonly pack?: string;
  readonly blob?: string;
}

export interface Verification {
  readonly id: string;
  readonly deploymentId: string;
  readonly trigger: VerificationTrigger;
  /** The part of the data read (0 … parts-1); null: all of it. */
  readonly part: number | null;
  readonly parts: number;
  readonly status: VerificationStatus;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** How many of the part's steps are done (a part is read in STEPS_PER_PART steps). */
  readonly stepsDone: number;
  readonly bytesRead: number;
  readonly packsRead: number;
  readonly findings: number;
  readonly findingList: readonly VerificationFinding[];
  /** Ids of the snapshots this check found damaged. */
  readonly damagedSnapshots: readonly string[];
  readonly error: string | null;
}

interface Row {
  id: string;
  deployment_id: string;
  trigger: VerificationTrigger;
  part: number | null;
  parts: number;
  status: VerificationStatus;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  steps_done: number;
  bytes_read: number;
  packs_read: number;
  findings: number;
  finding_list: string;
  damaged_snapshots: string;
  error: string | null;
}

const toVerification = (r: Row): Verification => ({
  id: r.id,
  deploymentId: r.deployment_id,
  trigger: r.trigger,
  part: r.part,
  parts: r.parts,
  status: r.status,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  stepsDone: r.steps_done,
  bytesRead: r.bytes_read,
  packsRead: r.packs_read,
  findings: r.findings,
  findingList: JSON.parse(r.finding_list) as VerificationFinding[],
  damagedSnapshots: JSON.parse(r.damaged_snapshots) as string[],
  error: r.error,
});

/** Where a deployment's rotation stands: when the next scheduled check is due and which part it reads. */
export interface VerificationSchedule {
  readonly deploymentId: string;
  readonly nextRunAt: number;
  readonly nextPart: number;
  readonly parts: number;
}

export type VerificationUpdate = Partial<
  Pick<
    Verification,
    | 'status'
    | 'startedAt'
    | 'finishedAt'
    | 'stepsDone'
    | 'bytesRead'
    | 'packsRead'
    | 'findings'
    | 'findingList'
    | 'damagedSnapshots'
    | 'error'
  >
>;

const COLUMNS: Record<keyof VerificationUpdate, string> = {
  status: 'status',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  stepsDone: 'steps_done',
  bytesRead: 'bytes_read',
  packsRead: 'packs_read',
  findings: 'findings',
  findingList: 'finding_list',
  damagedSnapshots: 'damaged_snapshots',
  error: 'error',
};

export class Verifications extends Table {
  insert(v: Pick<Verification, 'id' | 'deploymentId' | 'trigger' | 'part' | 'parts' | 'createdAt'>): Verification {
    this.q(
      "INSERT INTO verifications (id, deployment_id, trigger, part, parts, status, created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
    ).run(v.id, v.deploymentId, v.trigger, v.part, v.parts, v.createdAt);
    return this.get(v.id)!;
  }

  get(id: string): Verification | undefined {
    const r = this.q('SELECT * FROM verifications WHERE id = ?').get(id) as Row | undefined;
    return r && toVerification(r);
  }

  update(id: string, u: VerificationUpdate): void {
    const keys = (Object.keys(u) as Array<keyof VerificationUpdate>).filter((k) => COLUMNS[k] !== undefined);
    if (keys.length === 0) return;
    const values = keys.map((k) => {
      const v = u[k];
      return k === 'findingList' || k === 'damagedSnapshots' ? JSON.stringify(v) : (v ?? null);
    });
    this.q(`UPDATE verifications SET ${keys.map((k) => `${COLUMNS[k]} = ?`).join(', ')} WHERE id = ?`).run(...values, id);
  }

  /** page returns a deployment's checks newest first: `limit` of them, older than the check `before` when given. */
  page(deploymentId: string, limit: number, before?: string): Verification[] {
    const rows = before
      ? this.q(
          `SELECT * FROM verifications WHERE deployment_id = ?
             AND seq < (SELECT seq FROM verifications WHERE id = ? AND deployment_id = ?) ORDER BY seq DESC LIMIT ?`,
        ).all(deploymentId, before, deploymentId, limit)
      : this.q('SELECT * FROM verifications WHERE deployment_id = ? ORDER BY seq DESC LIMIT ?').all(deploymentId, limit);
    return (rows as Row[]).map(toVerification);
  }

  /**
   * finished yields a deployment's finished checks (ok or failed), newest
   * first, one row at a time: a caller that stops early reads no further.
   */
  *finished(deploymentId: string): Generator<Verification, void, undefined> {
    const rows = this.q("SELECT * FROM verifications WHERE deployment_id = ? AND status IN ('ok', 'failed') ORDER BY seq DESC").iterate(
      deploymentId,
    ) as IterableIterator<Row>;
    for (const r of rows) yield toVerification(r);
  }

  /** active returns a deployment's queued and running checks, oldest first. */
  active(deploymentId: string): Verification[] {
    return (
      this.q("SELECT * FROM verifications WHERE deployment_id = ? AND status IN ('queued', 'running') ORDER BY seq").all(
        deploymentId,
      ) as Row[]
    ).map(toVerification);
  }

  schedule(deploymentId: string): VerificationSchedule | undefined {
    const r = this.q('SELECT * FROM verification_schedule WHERE deployment_id = ?').get(deploymentId) as
      { deployment_id: string; next_run_at: number; next_part: number; parts: number } | undefined;
    return r && { deploymentId: r.deployment_id, nextRunAt: r.next_run_at, nextPart: r.next_part, parts: r.parts };
  }

  setSchedule(s: VerificationSchedule): void {
    this.q(
      `INSERT INTO verification_schedule (deployment_id, next_run_at, next_part, parts) VALUES (?, ?, ?, ?)
       ON CONFLICT (deployment_id) DO UPDATE SET next_run_at = excluded.next_run_at, next_part = excluded.next_part,
         parts = excluded.parts`,
    ).run(s.deploymentId, s.nextRunAt, s.nextPart, s.parts);
  }
}
