/**
 * deployment-service: deployments from SDL, their services on the runtime,
 * and the operations around them (update, restart, close, clone).
 *
 * Each operation records what it will do and queues a job in one
 * transaction; the job does it and can be re-run after a crash. At start,
 * reconcile() makes what should run, run (and thaws services a crash left
 * frozen).
 */
import fs from 'node:fs/promises';
import { ConflictError, ValidationError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { NAME_TEXT, checkText } from '../core/text.js';
import type { Deployment } from '../db/deployments.js';
import type { Job } from '../db/jobs.js';
import type { Store } from '../db/store.js';
import { Repository } from '../engine/index.js';
import type { DeploymentSpec } from '../runtime/types.js';
import { parseSdlOrThrow } from '../sdl/parse-sdl.js';
import type { Manifest } from '../sdl/types.js';
import { JobKind, type ServiceContext } from './context.js';
import { activeDeployment, assertIdle, currentOperation, ownedDeployment, pendingClones } from './guards.js';
import { type Paths, volumesOf } from './paths.js';
import { openRepo } from './repos.js';
import { moveVolumes, removeOrphans, volumeChanges } from './volume-dirs.js';
import { mapVolumes, snapshotVolumes } from './volume-map.js';
import type { SnapshotService } from './snapshot-service.js';
import { type DeploymentExtras } from './views.js';
import { VolumeUsage } from './volume-usage.js';
import { snapshotHealth } from './snapshot-health.js';

/** validateName applies the user-text rule (core/text.ts) to a deployment name, trimmed and not empty. */
export function validateName(name: unknown, fallback: string): string {
  if (name === undefined || name === null) return fallback;
  const text = checkText(name, NAME_TEXT).trim();
  if (text === '') throw new ValidationError('INVALID_NAME', `name must be 1-${NAME_TEXT.max} characters`);
  return text;
}

/** runtimeSpec turns a manifest into what the runtime runs. */
export function runtimeSpec(paths: Paths, depId: string, m: Manifest): DeploymentSpec {
  return {
    deploymentId: depId,
    services: m.services.map((s) => ({
      name: s.name,
      image: s.image,
      command: s.command,
      args: s.args,
      env: s.env,
      volumes: s.volumes.map((v) => ({
        name: v.name,
        hostPath: paths.volume(depId, { service: s.name, volume: v.name }),
        mountPath: v.mount,
        readOnly: v.readOnly,
      })),
      ...(s.resources ? { resources: s.resources } : {}),
    })),
  };
}

/** Options of the requests that create a deployment. */
export interface CreateOptions {
  /** A pre-assigned id (network mode); default a new one. */
  readonly id?: string;
}

/**
 * claimedId returns the deployment that already has a pre-assigned id when
 * it is `userId`'s (a repeated request), undefined when the id is free, and
 * refuses an id another user's deployment has (409 ID_IN_USE).
 */
function claimedId(store: Store, userId: string, id: string): Deployment | undefined {
  const existing = store.deployments.get(id);
  if (!existing) return undefined;
  if (existing.userId !== userId) throw new ConflictError('ID_IN_USE', `the id ${id} is already in use`);
  return existing;
}

export class DeploymentService {
  private readonly usage = new VolumeUsage();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly snapshots: SnapshotService,
  ) {
    ctx.jobs.register(JobKind.Deploy, (job) => this.deployJob(job));
    ctx.jobs.register(JobKind.Update, (job) => this.updateJob(job));
    ctx.jobs.register(JobKind.Restart, (job) => this.restartJob(job));
    ctx.jobs.register(JobKind.Close, (job) => this.closeJob(job));
    ctx.jobs.register(JobKind.Clone, (job) => this.cloneJob(job));
  }

  /* ---- requests ------------------------------------------------------------------ */

  /**
   * create records a deployment and queues its deploy job. `opts.id` is an id
   * chosen elsewhere (the control plane, in network mode): a deployment that
   * already has it and belongs to `userId` is returned as it is, so a
   * repeated request creates no twin.
   */
  create(userId: string, sdl: string, name: unknown, opts: CreateOptions = {}): Deployment {
    const manifest = parseSdlOrThrow(sdl);
    const { store, clock } = this.ctx;
    if (opts.id !== undefined) {
      const existing = claimedId(store, userId, opts.id);
      if (existing) return existing;
    }
    const now = clock.now();
    const d: Deployment = {
      id: opts.id ?? newId('dep'),
      userId,
      name: validateName(name, manifest.services[0]?.name ?? 'deployment'),
      sdl,
      manifest,
      status: 'active',
      clonedFrom: null,
      createdAt: now,
      updatedAt: now,
      closedAt: null,
    };
    store.tx(() => {
      store.deployments.insert(d);
      this.ctx.jobs.enqueue(d.id, JobKind.Deploy, {});
    });
    return d;
  }

  list(userId: string): Deployment[] {
    return this.ctx.store.deployments.listByUser(userId);
  }

  get(userId: string, id: string): Deployment {
    return ownedDeployment(this.ctx.store, userId, id);
  }

  /** update re-applies an SDL (restarting the services), after a before-update snapshot unless told not to. */
  update(userId: string, id: string, sdl: string, snapshot: boolean): Deployment {
    const manifest = parseSdlOrThrow(sdl);
    const { store } = this.ctx;
    return store.tx(() => {
      const d = activeDeployment(store, userId, id);
      assertIdle(store, id);
      const snapshotId = snapshot ? this.snapshots.insertRow(id, 'before-update', 'before-update').id : null;
      this.ctx.jobs.enqueue(id, JobKind.Update, { sdl, manifest, snapshotId });
      return d;
    });
  }

  restart(userId: string, id: string): Deployment {
    const { store } = this.ctx;
    return store.tx(() => {
      const d = activeDeployment(store, userId, id);
      assertIdle(store, id);
      this.ctx.jobs.enqueue(id, JobKind.Restart, {});
      return d;
    });
  }

  /** close stops the services and deletes the volumes and snapshots; the record stays, `closed`. */
  close(userId: string, id: string): Deployment {
    const { store, clock } = this.ctx;
    return store.tx(() => {
      activeDeployment(store, userId, id);
      assertIdle(store, id);
      if (pendingClones(store, id).length > 0) {
        throw new ConflictError(
          'OPERATION_IN_PROGRESS',
          `a clone of one of deployment ${id}'s snapshots is in progress; close it when the clone has finished`,
        );
      }
      store.deployments.close(id, clock.now());
      store.snapshots.deleteAll(id);
      store.settings.delete(id);
      this.ctx.offsite?.deploymentClosed(id);
      this.ctx.jobs.enqueue(id, JobKind.Close, {});
      return store.deployments.get(id)!;
    });
  }

  /** clone creates a deployment with the same SDL whose volumes start from a snapshot. */
  clone(userId: string, id: string, snapId: string, name: unknown, opts: CreateOptions = {}): Deployment {
    const { store, clock } = this.ctx;
    return store.tx(() => {
      const src = activeDeployment(store, userId, id);
      if (opts.id !== undefined) {
        const existing = claimedId(store, userId, opts.id);
        if (existing) return existing;
      }
      const snap = this.snapshots.get(userId, id, snapId);
      if (snap.status !== 'ready') throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} is ${snap.status}, not ready`);
      const now = clock.now();
      const d: Deployment = {
        ...src,
        id: opts.id ?? newId('dep'),
        name: validateName(name, `${src.name}-clone`),
        status: 'active',
        clonedFrom: snapId,
        createdAt: now,
        updatedAt: now,
        closedAt: null,
      };
      store.deployments.insert(d);
      this.ctx.jobs.enqueue(d.id, JobKind.Clone, { sourceDeploymentId: id, snapshotId: snapId, engineId: snap.engineId });
      return d;
    });
  }

  /** extras gathers what a deployment's view shows besides its row. */
  async extras(d: Deployment): Promise<DeploymentExtras> {
    const { store, runtime, paths } = this.ctx;
    if (d.status !== 'active') return { operation: null };
    // The operation first: one that ends while we ask the runtime shows as
    // done with services up, never as no operation with services down.
    const operation = currentOperation(store, d.id);
    const services = await runtime.status(d.id).catch(() => []);
    const volumeBytes: Record<string, number> = {};
    for (const v of volumesOf(d.manifest)) {
      const used = this.usage.get(paths.volume(d.id, v));
      if (used !== undefined) volumeBytes[v.key] = used;
    }
    const stats = store.snapshots.storage(d.id);
    const last = store.snapshots.latestReady(d.id);
    return {
      services,
      volumeBytes,
      snapshots: { ...stats, lastSnapshotAt: last ? new Date(last.createdAt).toISOString() : null },
      operation,
      snapshotHealth: snapshotHealth(store, d.id, this.ctx.clock.now()),
    };
  }

  /* ---- jobs ------------------------------------------------------------------------ */

  private async ensureVolumes(d: Pick<Deployment, 'id' | 'manifest'>): Promise<void> {
    for (const v of volumesOf(d.manifest)) await fs.mkdir(this.ctx.paths.volume(d.id, v), { recursive: true });
  }

  private async deployJob(job: Job): Promise<void> {
    const d = this.ctx.store.deployments.get(job.deploymentId);
    if (!d || d.status !== 'active') return;
    await this.ensureVolumes(d);
    await this.ctx.runtime.create(runtimeSpec(this.ctx.paths, d.id, d.manifest));
    await this.ctx.runtime.start(d.id);
  }

  /**
   * updateJob applies a new SDL. When it renames or removes volumes, the
   * services stop before the before-update snapshot, so that snapshot holds
   * the last data of the volumes that go; renamed volumes keep their data
   * (moved to the new name) and directories no volume uses any more are
   * removed when the snapshot holds them or they are empty (volume-dirs).
   */
  private async updateJob(job: Job): Promise<void> {
    const { store, clock, runtime, paths, log } = this.ctx;
    const d = store.deployments.get(job.deploymentId);
    if (!d || d.status !== 'active') return;
    const manifest = job.payload.manifest as Manifest;
    const changes = volumeChanges(d.manifest, manifest);
    const snapshotId = job.payload.snapshotId as string | null;
    let captured = false;
    if (snapshotId) {
      if (changes.gone.length > 0) await runtime.stop(d.id);
      const s = await this.snapshots.take(snapshotId);
      if (s.status !== 'ready') {
        if (changes.gone.length > 0)
          await runtime.start(d.id).catch((err: unknown) => log.error({ err, deployment: d.id }, 'could not restart'));
        throw new Error(`the before-update snapshot failed, the deployment was not updated: ${s.error ?? 'unknown error'}`);
      }
      captured = changes.gone.length > 0;
    }
    await runtime.stop(d.id);
    await moveVolumes(paths, d.id, changes);
    const updated = { ...d, manifest };
    await this.ensureVolumes(updated);
    await runtime.create(runtimeSpec(paths, d.id, manifest));
    store.deployments.updateSdl(d.id, d.name, job.payload.sdl as string, manifest, clock.now());
    await runtime.start(d.id);
    const kept = await removeOrphans(paths, d.id, manifest, new Set(captured ? changes.gone : []));
    if (kept.length > 0)
      log.warn({ deployment: d.id, volumes: kept }, 'kept the data of volumes the SDL no longer has (no snapshot holds it)');
  }

  private async restartJob(job: Job): Promise<void> {
    await this.ctx.runtime.stop(job.deploymentId);
    await this.ctx.runtime.start(job.deploymentId);
  }

  private async closeJob(job: Job): Promise<void> {
    const { runtime, paths } = this.ctx;
    await runtime.remove(job.deploymentId);
    // Wait for readers of the repository (a clone of one of its snapshots) before deleting it.
    const repo = await Repository.open(paths.repo(job.deploymentId), { lockTimeoutMs: 30 * 60_000 }).catch(() => null);
    const lock = await repo?.lock('exclusive', 'close');
    try {
      await fs.rm(paths.repo(job.deploymentId), { recursive: true, force: true });
    } finally {
      await lock?.release().catch(() => undefined);
      await repo?.close();
    }
    await fs.rm(paths.deploymentVolumes(job.deploymentId), { recursive: true, force: true });
    this.usage.forget(paths.deploymentVolumes(job.deploymentId));
    this.ctx.metrics.repositoryBytes.remove({ deployment: job.deploymentId });
  }

  private async cloneJob(job: Job): Promise<void> {
    const { store, paths, runtime } = this.ctx;
    const d = store.deployments.get(job.deploymentId);
    if (!d || d.status !== 'active') return;
    const srcId = job.payload.sourceDeploymentId as string;
    const repo = await openRepo(paths, srcId, false);
    try {
      const record = await repo.findSnapshot(job.payload.engineId as string);
      const names = record.root.subtree ? (await repo.readTree(record.root.subtree)).map((n) => n.name.toString()) : [];
      // The snapshot may predate a rename of the source's volumes: map them as a restore does.
      const from = new Map(mapVolumes(snapshotVolumes(record.tags, names), volumesOf(d.manifest)).pairs.map((p) => [p.to, p.from]));
      for (const v of volumesOf(d.manifest)) {
        const target = paths.volume(d.id, v);
        await fs.rm(target, { recursive: true, force: true }); // a crash may have left a partial copy
        await fs.mkdir(target.slice(0, target.lastIndexOf('/')), { recursive: true });
        const key = from.get(v.key);
        if (key !== undefined) await repo.restore(record, target, { subpath: key, sync: true });
        else await fs.mkdir(target);
      }
    } finally {
      await repo.close();
    }
    await runtime.create(runtimeSpec(paths, d.id, d.manifest));
    await runtime.start(d.id);
  }

  /* ---- start-up --------------------------------------------------------------------- */

  /**
   * reconcile makes every active deployment's services run (unless a job is
   * about to handle it), thaws services left frozen, and removes services of
   * deployments that are not active.
   */
  async reconcile(): Promise<void> {
    const { store, runtime, paths, log } = this.ctx;
    // A gc job never touches services: it does not bring a deployment up.
    const pending = new Set(
      store.jobs
        .pending()
        .filter((j) => j.kind !== JobKind.Gc)
        .map((j) => j.deploymentId),
    );
    for (const d of store.deployments.listActive()) {
      try {
        const status = await runtime.status(d.id);
        const byName = new Map(status.map((s) => [s.name, s.state]));
        // Nothing leaves services frozen across a restart on purpose: a crash
        // during a snapshot's freeze did. Thaw them even if a job will resume.
        if ([...byName.values()].includes('paused')) await runtime.thaw(d.id);
        if (pending.has(d.id)) continue;
        if (d.manifest.services.some((s) => !byName.has(s.name) || byName.get(s.name) === 'missing')) {
          await this.ensureVolumes(d);
          await runtime.create(runtimeSpec(paths, d.id, d.manifest));
        }
        await runtime.start(d.id);
      } catch (err) {
        log.error({ err, deployment: d.id }, 'could not bring deployment up');
      }
    }
    const active = new Set(store.deployments.listActive().map((d) => d.id));
    for (const id of await runtime.deployments().catch(() => [])) {
      if (!active.has(id) && !pending.has(id))
        await runtime.remove(id).catch((err: unknown) => log.warn({ err, deployment: id }, 'could not remove'));
    }
  }
}
