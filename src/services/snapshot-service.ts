/**
 * snapshot-service: creating, listing, deleting snapshots, and the jobs that
 * do the work. A snapshot row is created `creating` together with its job in
 * one transaction; the job captures (capture.ts), then marks it `ready` or
 * `failed`. Deleting marks it `deleting`; its job removes the engine
 * snapshot, then the row, and marks the deployment's gc due (gc-service.ts
 * collects the garbage in batches). With off-node copies configured, a
 * snapshot turning ready queues its copy and a deleted one queues the
 * removal of its copy, each in the same transaction (offsite-service.ts).
 */
import { iso } from '../core/clock.js';
import { ConflictError, DiskFullError, KovaError, NotFoundError, StorageUnavailableError, isDatabaseUnavailable } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { LABEL_TEXT, checkText } from '../core/text.js';
import type { Job } from '../db/jobs.js';
import type { OffsiteCopy } from '../db/offsite.js';
import type { Repository } from '../engine/index.js';
import type { Snapshot, SnapshotTrigger, SnapshotUpdate } from '../db/snapshots.js';
import { planRetention, retentionPolicy } from '../scheduler/retention.js';
import { captureDeployment } from './capture.js';
import { JobKind, type ServiceContext } from './context.js';
import { markGcDue } from './gc-service.js';
import { activeDeployment, assertIdle, pendingClones, sanitize } from './guards.js';
import { openRepo } from './repos.js';

const PROGRESS_EVERY_MS = 250;

/** validateLabel applies the user-text rule (core/text.ts) to a label; a blank one is no label. */
export function validateLabel(label: unknown): string | null {
  if (label === undefined || label === null) return null;
  const text = checkText(label, LABEL_TEXT);
  return text.trim() === '' ? null : text;
}

/** withOffsite adds a snapshot's off-node copy (null when it was never queued for one). */
function withOffsite(s: Snapshot, c: OffsiteCopy | undefined): Snapshot {
  return { ...s, offsite: c ? { status: c.status, copiedAt: c.copiedAt, error: c.error } : null };
}

export class SnapshotService {
  constructor(private readonly ctx: ServiceContext) {
    ctx.jobs.register(JobKind.Snapshot, (job) => this.snapshotJob(job));
    ctx.jobs.register(JobKind.DeleteSnapshot, (job) => this.deleteJob(job));
  }

  /** list returns a deployment's snapshots, newest first, each with its off-node copy. */
  list(userId: string, depId: string): Snapshot[] {
    activeDeployment(this.ctx.store, userId, depId);
    const rows = this.ctx.store.snapshots.list(depId);
    if (!this.ctx.offsite?.configured) return rows;
    const copies = this.ctx.store.offsite.forDeployment(depId);
    return rows.map((s) => withOffsite(s, copies.get(s.id)));
  }

  get(userId: string, depId: string, snapId: string): Snapshot {
    activeDeployment(this.ctx.store, userId, depId);
    const s = this.ctx.store.snapshots.inDeployment(depId, snapId);
    if (!s) throw new NotFoundError('SNAPSHOT_NOT_FOUND', `snapshot ${snapId} not found`);
    return this.ctx.offsite?.configured ? withOffsite(s, this.ctx.store.offsite.get(s.id)) : s;
  }

  /**
   * create starts a manual snapshot (202: it is `creating`). `opts.id` is an
   * id chosen elsewhere (the control plane, in network mode): a snapshot of
   * this deployment that already has it is returned as it is (a repeated
   * request), and an id used by another deployment is refused (409 ID_IN_USE).
   */
  create(userId: string, depId: string, label: unknown, opts: { readonly id?: string } = {}): Snapshot {
    const clean = validateLabel(label);
    const { store } = this.ctx;
    return store.tx(() => {
      activeDeployment(store, userId, depId);
      if (opts.id !== undefined) {
        const existing = store.snapshots.get(opts.id);
        if (existing && existing.deploymentId === depId) return existing;
        if (existing) throw new ConflictError('ID_IN_USE', `the id ${opts.id} is already in use`);
      }
      assertIdle(store, depId);
      return this.enqueue(depId, 'manual', clean, opts.id);
    });
  }

  /** enqueue creates a `creating` snapshot and its job (call inside a transaction). */
  enqueue(depId: string, trigger: SnapshotTrigger, label: string | null, id?: string): Snapshot {
    const s = this.insertRow(depId, trigger, label, id);
    this.ctx.jobs.enqueue(depId, JobKind.Snapshot, { snapshotId: s.id });
    return s;
  }

  /** insertRow creates a `creating` snapshot (id: pre-assigned, default a new one) for a job that will call take() itself. */
  insertRow(depId: string, trigger: SnapshotTrigger, label: string | null, id: string = newId('snap')): Snapshot {
    const s = { id, deploymentId: depId, label, status: 'creating' as const, trigger, createdAt: this.ctx.clock.now() };
    this.ctx.store.snapshots.insert(s);
    return this.ctx.store.snapshots.get(s.id)!;
  }

  /** delete marks a snapshot `deleting`; a job removes it. */
  delete(userId: string, depId: string, snapId: string): void {
    const { store } = this.ctx;
    store.tx(() => {
      const s = this.get(userId, depId, snapId);
      if (s.status === 'creating') throw new ConflictError('SNAPSHOT_BUSY', `snapshot ${snapId} is still being created`);
      if (s.status === 'deleting') return;
      const restoring = store.jobs.activeFor(depId, [JobKind.Restore]).some((j) => j.payload.snapshotId === snapId);
      if (restoring) throw new ConflictError('SNAPSHOT_BUSY', `snapshot ${snapId} is being restored`);
      if (pendingClones(store, depId, snapId).length > 0) throw new ConflictError('SNAPSHOT_BUSY', `snapshot ${snapId} is being cloned`);
      store.snapshots.update(snapId, { status: 'deleting' });
      this.ctx.jobs.enqueue(depId, JobKind.DeleteSnapshot, { snapshotIds: [snapId] });
    });
  }

  private async snapshotJob(job: Job): Promise<void> {
    await this.take(job.payload.snapshotId as string);
  }

  /**
   * take runs a `creating` snapshot to `ready` or `failed`. It is safe to
   * call again after a crash: an engine snapshot already committed for it is
   * adopted. Returns the final row.
   */
  async take(snapId: string): Promise<Snapshot> {
    const { store, clock, metrics } = this.ctx;
    const snap = store.snapshots.get(snapId);
    if (!snap || snap.status !== 'creating') return snap!;
    const dep = store.deployments.get(snap.deploymentId)!;
    const parent = store.snapshots.latestReady(dep.id);
    const started = clock.now();
    let last = 0;
    let repo: Repository | null = null;
    try {
      // One open serves the capture, the retention that follows and the size gauge.
      repo = await openRepo(this.ctx.paths, dep.id, true);
      const r = await captureDeployment(
        this.ctx,
        dep,
        {
          snapshotId: snapId,
          label: snap.label,
          parentEngineId: parent?.engineId ?? null,
          onProgress: (p) => {
            const now = Date.now();
            if (now - last < PROGRESS_EVERY_MS) return;
            last = now;
            try {
              store.snapshots.update(snapId, { progressDone: p.bytesDone, progressTotal: p.bytesTotal });
            } catch (err) {
              // Progress is a nicety: a database that cannot write must not fail the capture.
              this.ctx.log.warn({ err, snapshot: snapId }, 'could not record snapshot progress');
            }
          },
        },
        repo,
      );
      const st = r.record.stats;
      // Housekeeping first, so that once the snapshot reads `ready` its job is over
      // and the deployment is free for the next operation. Its failure is not
      // the snapshot's: that is safely recorded already.
      let warning = r.warning;
      try {
        if (snap.trigger === 'automatic') await this.applyRetention(dep.id, snapId, repo);
        await this.updateRepoGauge(dep.id, repo);
      } catch (err) {
        this.ctx.log.error({ err, deployment: dep.id }, 'pruning old automatic snapshots failed');
        warning = [warning, 'older automatic snapshots could not be pruned; they will be retried after the next one']
          .filter(Boolean)
          .join('; ');
      }
      // Closed before the snapshot reads `ready`: from then on the job has no I/O
      // left, so a client that sees `ready` finds the deployment free.
      await repo.close();
      repo = null;
      store.tx(() => {
        this.markReady(snapId, dep.id, {
          status: 'ready',
          readyAt: clock.now(),
          engineId: r.record.id,
          sizeBytes: st.bytes,
          storedBytes: st.storedBytes,
          files: st.files,
          consistency: r.consistency,
          freezeMs: r.freezeMs,
          warning,
          progressDone: st.bytes,
          progressTotal: st.bytes,
        });
      });
      metrics.snapshots.inc({ outcome: 'ready', trigger: snap.trigger });
      this.ctx.disk.written();
      metrics.snapshotDuration.observe((clock.now() - started) / 1000);
    } catch (err) {
      if (err instanceof DiskFullError) this.ctx.disk.full('repository', err, { snapshot: snapId, deployment: dep.id });
      const message = err instanceof KovaError || err instanceof Error ? err.message : String(err);
      try {
        store.snapshots.update(snapId, { status: 'failed', error: sanitize(message, this.ctx.paths.dataDir) });
      } catch (dbErr) {
        // The row stays `creating`; the job is re-run after a restart, or fails with this.
        if (!isDatabaseUnavailable(dbErr)) throw dbErr;
        this.ctx.disk.full('database', dbErr, { snapshot: snapId, deployment: dep.id });
        throw new StorageUnavailableError(dbErr);
      }
      metrics.snapshots.inc({ outcome: 'failed', trigger: snap.trigger });
      this.ctx.log.warn({ err, snapshot: snapId, deployment: dep.id }, 'snapshot failed');
      const failed = store.snapshots.get(snapId);
      this.ctx.events?.emit('snapshot.failed', dep.id, {
        snapshot: { id: snapId, label: snap.label, trigger: snap.trigger, createdAt: iso(snap.createdAt), error: failed?.error ?? null },
      });
    } finally {
      await repo?.close();
    }
    return store.snapshots.get(snapId)!;
  }

  /** markReady records a snapshot as ready and queues its off-node copy (call inside a transaction). */
  private markReady(snapId: string, depId: string, u: SnapshotUpdate): void {
    this.ctx.store.snapshots.update(snapId, u);
    this.ctx.offsite?.snapshotReady(depId, snapId);
  }

  /**
   * applyRetention deletes the ready automatic snapshots the deployment's
   * retention policy (planRetention: the `retention` most recent plus the
   * calendar tiers) does not keep, counting `justTaken` (an automatic
   * snapshot about to be marked ready) as ready. Manual ones are never
   * counted or deleted; failed ones don't count. `repo` is the deployment's
   * repository, open.
   */
  async applyRetention(depId: string, justTaken: string, repo: Repository): Promise<void> {
    const { store } = this.ctx;
    const policy = retentionPolicy(store.settings.get(depId));
    const all = store.snapshots.list(depId);
    const taken = all.find((s) => s.id === justTaken);
    const victims = [
      ...planRetention(
        all.map((s) => ({ ...s, automatic: s.trigger === 'automatic', status: s.id === justTaken ? 'ready' : s.status })),
        policy,
      ).prune,
      // Failed automatic snapshots hold no data; once a newer one succeeded they are only noise.
      ...all.filter((s) => s.trigger === 'automatic' && s.status === 'failed' && taken !== undefined && s.createdAt <= taken.createdAt),
    ];
    if (victims.length === 0) return;
    store.tx(() => {
      for (const v of victims) store.snapshots.update(v.id, { status: 'deleting' });
    });
    await this.remove(
      depId,
      victims.map((v) => v.id),
      repo,
    );
  }

  private async deleteJob(job: Job): Promise<void> {
    const repo = await openRepo(this.ctx.paths, job.deploymentId, false).catch(() => null);
    try {
      await this.remove(job.deploymentId, job.payload.snapshotIds as string[], repo);
      if (repo) await this.updateRepoGauge(job.deploymentId, repo);
    } finally {
      await repo?.close();
    }
  }

  /**
   * remove deletes `deleting` snapshots from the repository (null when the
   * deployment has none), then their rows. It does not collect garbage: it
   * marks the deployment's gc due, and the batched gc (gc-service.ts)
   * reclaims the space later.
   */
  private async remove(depId: string, snapIds: readonly string[], repo: Repository | null): Promise<void> {
    const { store } = this.ctx;
    // Marked before the first engine delete, so that a crash halfway still leaves the gc due.
    if (repo && snapIds.some((id) => store.snapshots.get(id)?.engineId)) markGcDue(this.ctx, depId);
    for (const id of snapIds) {
      const s = store.snapshots.get(id);
      if (!s || s.status !== 'deleting') continue;
      if (repo && s.engineId) {
        await repo.deleteSnapshot(s.engineId).catch((err: unknown) => {
          if (!(err instanceof KovaError && err.code === 'SNAPSHOT_NOT_FOUND')) throw err;
        });
      }
      store.tx(() => {
        store.snapshots.delete(id);
        this.ctx.offsite?.snapshotDeleted(depId, id, s.engineId);
      });
    }
  }

  /** updateRepoGauge sets the repository-size metric of a deployment from its open repository. */
  async updateRepoGauge(depId: string, repo: Repository): Promise<void> {
    this.ctx.metrics.repositoryBytes.set({ deployment: depId }, (await repo.stats()).packBytes);
  }
}
