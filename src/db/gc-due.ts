/**
 * gc-due: which deployments' repositories hold garbage left by deleted
 * snapshots, and when their batched gc is due. A mark is set by the first
 * delete after a gc and keeps that first time (later deletes join the same
 * batch); gc clears it, or moves it on after a failure.
 */
import { Table } from './table.js';

export interface GcDueMark {
  readonly deploymentId: string;
  /** When the first delete of this batch left garbage. */
  readonly since: number;
  /** When gc should run. */
  readonly dueAt: number;
}

interface Row {
  deployment_id: string;
  since: number;
  due_at: number;
}

const toMark = (r: Row): GcDueMark => ({ deploymentId: r.deployment_id, since: r.since, dueAt: r.due_at });

export class GcDue extends Table {
  /** mark makes gc due at `dueAt` unless it is due already (an earlier mark is kept). */
  mark(deploymentId: string, since: number, dueAt: number): void {
    this.q('INSERT INTO gc_due (deployment_id, since, due_at) VALUES (?, ?, ?) ON CONFLICT (deployment_id) DO NOTHING').run(
      deploymentId,
      since,
      dueAt,
    );
  }

  get(deploymentId: string): GcDueMark | undefined {
    const r = this.q('SELECT * FROM gc_due WHERE deployment_id = ?').get(deploymentId) as Row | undefined;
    return r && toMark(r);
  }

  /** dueBy returns the marks due at or before `now`, earliest first. */
  dueBy(now: number): GcDueMark[] {
    return (this.q('SELECT * FROM gc_due WHERE due_at <= ? ORDER BY due_at, deployment_id').all(now) as Row[]).map(toMark);
  }

  /** postpone moves a mark's due time (after a failed gc). */
  postpone(deploymentId: string, dueAt: number): void {
    this.q('UPDATE gc_due SET due_at = ? WHERE deployment_id = ?').run(dueAt, deploymentId);
  }

  clear(deploymentId: string): void {
    this.q('DELETE FROM gc_due WHERE deployment_id = ?').run(deploymentId);
  }
}
