/**
 * jobs: the persistent job queue. A job survives a restart of the service:
 * one found `running` at start is re-queued and its handler resumes it.
 */
import { Table } from './table.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface Job {
  readonly id: number;
  readonly deploymentId: string;
  readonly kind: string;
  readonly payload: Record<string, unknown>;
  readonly state: JobState;
  readonly attempts: number;
  readonly error: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

interface Row {
  id: number;
  deployment_id: string;
  kind: string;
  payload: string;
  state: JobState;
  attempts: number;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const toJob = (r: Row): Job => ({
  id: r.id,
  deploymentId: r.deployment_id,
  kind: r.kind,
  payload: JSON.parse(r.payload) as Record<string, unknown>,
  state: r.state,
  attempts: r.attempts,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export class Jobs extends Table {
  enqueue(deploymentId: string, kind: string, payload: Record<string, unknown>, at: number): number {
    return Number(
      this.db
        .prepare("INSERT INTO jobs (deployment_id, kind, payload, state, created_at) VALUES (?, ?, ?, 'queued', ?)")
        .run(deploymentId, kind, JSON.stringify(payload), at).lastInsertRowid,
    );
  }

  get(id: number): Job | undefined {
    const r = this.q('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r && toJob(r);
  }

  /** pending returns queued and running jobs, oldest first. */
  pending(): Job[] {
    return (this.q("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id").all() as Row[]).map(toJob);
  }

  /** activeFor returns a deployment's queued and running jobs of the given kinds. */
  activeFor(deploymentId: string, kinds: readonly string[]): Job[] {
    const marks = kinds.map(() => '?').join(', ');
    return (
      this.db
        .prepare(`SELECT * FROM jobs WHERE deployment_id = ? AND state IN ('queued', 'running') AND kind IN (${marks}) ORDER BY id`)
        .all(deploymentId, ...kinds) as Row[]
    ).map(toJob);
  }

  /** activeOfKind returns queued and running jobs of one kind, on any deployment. */
  activeOfKind(kind: string): Job[] {
    return (this.q("SELECT * FROM jobs WHERE state IN ('queued', 'running') AND kind = ? ORDER BY id").all(kind) as Row[]).map(toJob);
  }

  markRunning(id: number, at: number): void {
    this.q("UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ?").run(at, id);
  }

  finish(id: number, state: 'done' | 'failed', error: string | null, at: number): void {
    this.q('UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?').run(state, error, at, id);
  }

  /** requeueRunning puts jobs a crash interrupted back in the queue; returns how many. */
  requeueRunning(): number {
    return this.q("UPDATE jobs SET state = 'queued' WHERE state = 'running'").run().changes;
  }

  /** prune deletes finished jobs older than `before`. */
  prune(before: number): void {
    this.q("DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < ?").run(before);
  }
}
