/**
 * gc-service: garbage collection of deployments' repositories, in batches.
 *
 * Deleting a snapshot (by hand or by retention) only removes its record;
 * the data it alone held stays in the packs until gc. Reading every index
 * and rewriting packs is the most expensive thing a node does, so a delete
 * marks its deployment "gc due" (db/gc-due.ts, persisted) one gcInterval
 * after the first delete of the batch, and tick() (called by the scheduler
 * tick) queues one `gc` job per deployment whose gc is due. The job is
 * serialised with the deployment's other jobs like every job, and survives
 * a restart like every job; a mark not yet turned into a job survives too.
 *
 * A gc that fails is logged and due again one gcInterval later; it blocks
 * nothing (snapshots and deletes go on, and join the same batch). Closing a
 * deployment deletes its whole repository, so its mark is simply dropped.
 */
import type { Job } from '../db/jobs.js';
import { JobKind, type ServiceContext } from './context.js';
import { openRepo } from './repos.js';

/** Default gcInterval: one hour. */
export const DEFAULT_GC_INTERVAL_MS = 3_600_000;

/**
 * markGcDue records that `depId`'s repository holds garbage: gc becomes due
 * one gcInterval from now, unless it is due already (the earlier time stays).
 */
export function markGcDue(ctx: ServiceContext, depId: string): void {
  const now = ctx.clock.now();
  ctx.store.gcDue.mark(depId, now, now + ctx.config.gcIntervalMs);
}

export class GcService {
  constructor(private readonly ctx: ServiceContext) {
    ctx.jobs.register(JobKind.Gc, (job) => this.gcJob(job));
  }

  /**
   * tick queues a gc job for each deployment whose gc is due and has none
   * queued or running; returns how many. It never throws: a database that
   * cannot write is logged, and the marks are still due at the next tick,
   * so the snapshot schedule that shares the tick is never held up.
   */
  tick(): number {
    const { store, clock } = this.ctx;
    let queued = 0;
    try {
      for (const m of store.gcDue.dueBy(clock.now())) {
        store.tx(() => {
          if (store.jobs.activeFor(m.deploymentId, [JobKind.Gc]).length > 0) return;
          this.ctx.jobs.enqueue(m.deploymentId, JobKind.Gc);
          queued++;
        });
      }
    } catch (err) {
      this.ctx.log.error({ err }, 'could not queue the gcs due; they are tried again at the next tick');
    }
    return queued;
  }

  private async gcJob(job: Job): Promise<void> {
    const { store, clock, metrics, log, config } = this.ctx;
    const depId = job.deploymentId;
    const mark = store.gcDue.get(depId);
    if (!mark) return;
    if (store.deployments.get(depId)?.status !== 'active') {
      store.gcDue.clear(depId);
      return;
    }
    const started = clock.now();
    try {
      const repo = await openRepo(this.ctx.paths, depId, false);
      try {
        const rep = await repo.gc();
        const seconds = (clock.now() - started) / 1000;
        const reclaimed = Math.max(0, rep.bytesBefore - rep.bytesAfter);
        // Jobs of a deployment run one at a time: no delete happened during this gc.
        store.gcDue.clear(depId);
        metrics.gcDuration.observe(seconds);
        metrics.gcReclaimed.inc(reclaimed);
        metrics.repositoryBytes.set({ deployment: depId }, rep.bytesAfter);
        log.info(
          {
            deployment: depId,
            durationMs: Math.round(seconds * 1000),
            reclaimedBytes: reclaimed,
            packsRepacked: rep.packsRepacked,
            packsDeleted: rep.packsDeleted,
            packsBefore: rep.packsBefore,
            packsAfter: rep.packsAfter,
            repositoryBytes: rep.bytesAfter,
            snapshots: rep.snapshots,
            dueSince: new Date(mark.since).toISOString(),
          },
          'garbage collected',
        );
      } finally {
        await repo.close();
      }
    } catch (err) {
      const retryAt = started + config.gcIntervalMs;
      try {
        store.gcDue.postpone(depId, retryAt);
      } catch (dbErr) {
        log.error({ err: dbErr, deployment: depId }, 'could not postpone the failed gc; it is retried at the next tick');
      }
      log.error({ err, deployment: depId, retryAt: new Date(retryAt).toISOString() }, 'gc failed; it is retried after the gc interval');
      throw err;
    }
  }
}
