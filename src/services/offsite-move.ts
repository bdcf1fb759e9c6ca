/**
 * offsite-move: a deployment moving between the nodes of a network through
 * its off-node copies, when the node it ran on is offline or gone.
 *
 * On the node that takes it (`recover`, one operation of the control
 * plane): the request records, in one transaction, the deployment as the
 * catalogue knows it (same id, name, SDL), its settings and off-node
 * choice, and the rows of the snapshots the catalogue lists as copied
 * (marked `copied`), and queues a `recover` job. The request first checks
 * that the bucket repository holds the chosen snapshot, so a target that
 * does not answer, or does not have it, refuses the move before anything
 * is recorded. The job then, re-entrant after a crash:
 *   1. pulls the deployment's whole bucket repository into the local one
 *      (copy.ts: missing blobs only, each checked against its id), so every
 *      snapshot of its history is restorable here, and drops the rows of
 *      snapshots whose record did not come back;
 *   2. restores the chosen snapshot into fresh volumes (mapped as a clone
 *      maps them);
 *   3. creates and starts the services.
 * While it runs the deployment's operation is `recover`, and other
 * operations on it answer 409 OPERATION_IN_PROGRESS.
 *
 * A clone of a snapshot of a deployment whose node is offline
 * (`clone-offsite`) is made the same way on the node chosen for it, its
 * volumes restored straight from the source's bucket repository.
 *
 * On the node it left (`forget`, queued for when that node is back): its
 * services are stopped and removed and its rows deleted from this node's
 * journal, but its data directory entries (`volumes/<id>`, `repos/<id>`)
 * are left for the operator. The node never runs or reports it again.
 */
import fs from 'node:fs/promises';
import { ConflictError, KovaError, NotFoundError } from '../core/errors.js';
import type { Deployment } from '../db/deployments.js';
import type { Job } from '../db/jobs.js';
import type { SnapshotSettings } from '../db/settings.js';
import type { Snapshot } from '../db/snapshots.js';
import { Repository } from '../engine/index.js';
import { copySnapshots } from '../engine/repo/copy.js';
import { JobKind, type ServiceContext } from './context.js';
import { runtimeSpec, validateName } from './deployment-service.js';
import { restoreVolumes, restoreVolumesFrom } from './offsite-recovery.js';
import type { OffsiteService } from './offsite-service.js';
import { openDeploymentRepo } from './offsite-target.js';

/** What the control plane sends with a recovery: the deployment as its catalogue holds it. */
export interface RecoverRequest {
  readonly deployment: Deployment;
  readonly settings: SnapshotSettings & { readonly offsite?: { readonly enabled: boolean } | null };
  /** The snapshots the catalogue lists as copied off-node (the chosen one among them). */
  readonly snapshots: readonly Snapshot[];
  /** The snapshot whose data the volumes start from. */
  readonly snapshotId: string;
}

/** What the control plane sends with a clone from an off-node copy (the source's node is offline). */
export interface OffsiteCloneRequest {
  /** The deployment cloned, as the catalogue holds it (its SDL is the clone's). */
  readonly source: Deployment;
  readonly snapshotId: string;
  readonly engineId: string;
  /** The clone's name (default `<source name>-clone`). */
  readonly name: string | null;
}

/** The tables holding a deployment's rows on a node, children first. */
const DEPLOYMENT_TABLES = [
  'jobs',
  'restores',
  'verifications',
  'verification_schedule',
  'offsite_copies',
  'offsite_deletes',
  'offsite_gc_due',
  'offsite_settings',
  'gc_due',
  'snapshots',
  'snapshot_settings',
] as const;

export class OffsiteMove {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly offsite: OffsiteService,
  ) {
    ctx.jobs.register(JobKind.Recover, (job) => this.recoverJob(job));
    ctx.jobs.register(JobKind.CloneOffsite, (job) => this.cloneJob(job));
  }

  /**
   * cloneFrom records a clone (id `id`) of a snapshot of a deployment on
   * another node, whose copy is in the bucket, and queues its job: the
   * volumes are restored straight from the bucket repository (nothing of
   * the source's history is kept here), then the services start. A repeat
   * returns the clone as it is.
   */
  async cloneFrom(userId: string, id: string, r: OffsiteCloneRequest): Promise<Deployment> {
    const { store, clock } = this.ctx;
    const existing = store.deployments.get(id);
    if (existing) {
      if (existing.userId !== userId) throw new ConflictError('ID_IN_USE', `the id ${id} is already in use`);
      return existing;
    }
    const target = this.offsite.target;
    if (!target) {
      throw new ConflictError('OFFSITE_NOT_CONFIGURED', 'this node has no off-node target (kova node --offsite): it cannot clone from it');
    }
    const name = validateName(r.name, `${r.source.name}-clone`);
    const remote = await openDeploymentRepo(target, r.source.id);
    try {
      const there = remote ? new Set((await remote.listSnapshots()).map((x) => x.id)) : new Set<string>();
      if (!there.has(r.engineId)) {
        throw new ConflictError('SNAPSHOT_NOT_COPIED', `the off-node target holds no copy of snapshot ${r.snapshotId}`);
      }
    } finally {
      await remote?.close();
    }
    const now = clock.now();
    return store.tx(() => {
      if (!store.users.get(userId)) store.users.insert({ id: userId, name: userId, createdAt: now });
      const again = store.deployments.get(id);
      if (again) return again;
      const d: Deployment = {
        ...r.source,
        id,
        userId,
        name,
        status: 'active',
        clonedFrom: r.snapshotId,
        createdAt: now,
        updatedAt: now,
        closedAt: null,
      };
      store.deployments.insert(d);
      this.ctx.jobs.enqueue(id, JobKind.CloneOffsite, { sourceDeploymentId: r.source.id, snapshotId: r.snapshotId, engineId: r.engineId });
      return d;
    });
  }

  private async cloneJob(job: Job): Promise<void> {
    const { store, paths, runtime } = this.ctx;
    const d = store.deployments.get(job.deploymentId);
    if (!d || d.status !== 'active') return;
    const target = this.offsite.target;
    if (!target) throw new KovaError('OFFSITE_NOT_CONFIGURED', 'this node has no off-node target', { status: 409 });
    const remote = await openDeploymentRepo(target, job.payload.sourceDeploymentId as string);
    if (!remote) throw new Error(`the off-node target holds no copy of deployment ${String(job.payload.sourceDeploymentId)}`);
    try {
      // A crash may have left a partial copy: start from empty volumes.
      await fs.rm(paths.deploymentVolumes(d.id), { recursive: true, force: true });
      await restoreVolumesFrom(remote, paths, d.id, d.manifest, job.payload.engineId as string);
    } finally {
      await remote.close();
    }
    await runtime.create(runtimeSpec(paths, d.id, d.manifest));
    await runtime.start(d.id);
  }

  /**
   * recover records the deployment moved here and queues its recover job.
   * A repeat (the deployment exists and is `userId`'s) returns it as it is,
   * after queueing the recover job again when the last one failed (a retry
   * of a recovery whose pull or restore did not finish).
   */
  async recover(userId: string, r: RecoverRequest): Promise<Deployment> {
    const { store, clock } = this.ctx;
    const id = r.deployment.id;
    const existing = store.deployments.get(id);
    if (existing) {
      if (existing.userId !== userId) throw new ConflictError('ID_IN_USE', `the id ${id} is already in use`);
      store.tx(() => {
        const last = store.db
          .prepare('SELECT state FROM jobs WHERE deployment_id = ? AND kind = ? ORDER BY id DESC LIMIT 1')
          .get(id, JobKind.Recover) as { state: string } | undefined;
        const chosen = r.snapshots.find((s) => s.id === r.snapshotId);
        if (last?.state === 'failed' && chosen?.engineId && existing.status === 'active') {
          this.ctx.jobs.enqueue(id, JobKind.Recover, { snapshotId: r.snapshotId, engineId: chosen.engineId });
        }
      });
      return existing;
    }
    const target = this.offsite.target;
    if (!target) {
      throw new ConflictError(
        'OFFSITE_NOT_CONFIGURED',
        'this node has no off-node target (kova node --offsite): it cannot recover deployments',
      );
    }
    const chosen = r.snapshots.find((s) => s.id === r.snapshotId);
    if (!chosen?.engineId) throw new NotFoundError('SNAPSHOT_NOT_FOUND', `snapshot ${r.snapshotId} not found`);
    // The bucket must hold the chosen snapshot before anything is recorded.
    const remote = await openDeploymentRepo(target, id);
    if (!remote) throw new ConflictError('SNAPSHOT_NOT_COPIED', `the off-node target holds no copy of deployment ${id}`);
    try {
      const there = new Set((await remote.listSnapshots()).map((s) => s.id));
      if (!there.has(chosen.engineId)) {
        throw new ConflictError('SNAPSHOT_NOT_COPIED', `the off-node target holds no copy of snapshot ${r.snapshotId}`);
      }
    } finally {
      await remote.close();
    }
    const now = clock.now();
    return store.tx(() => {
      if (!store.users.get(userId)) store.users.insert({ id: userId, name: userId, createdAt: now });
      const again = store.deployments.get(id);
      if (again) return again;
      const d: Deployment = { ...r.deployment, userId, status: 'active', updatedAt: now, closedAt: null };
      store.deployments.insert(d);
      const { offsite: choice, ...settings } = r.settings;
      store.settings.put({ ...settings, deploymentId: id });
      if (choice) store.offsite.setEnabled(id, choice.enabled);
      for (const s of r.snapshots) {
        if (s.status !== 'ready' || !s.engineId) continue;
        store.snapshots.insert({ id: s.id, deploymentId: id, label: s.label, status: 'ready', trigger: s.trigger, createdAt: s.createdAt });
        store.snapshots.update(s.id, {
          readyAt: s.readyAt,
          engineId: s.engineId,
          sizeBytes: s.sizeBytes,
          storedBytes: s.storedBytes,
          files: s.files,
          consistency: s.consistency,
          freezeMs: s.freezeMs,
          warning: s.warning,
        });
        store.offsite.insertCopied(s.id, id, s.offsite?.copiedAt ?? s.readyAt ?? s.createdAt);
      }
      this.ctx.jobs.enqueue(id, JobKind.Recover, { snapshotId: r.snapshotId, engineId: chosen.engineId });
      return d;
    });
  }

  private async recoverJob(job: Job): Promise<void> {
    const { store, paths, runtime, log } = this.ctx;
    const d = store.deployments.get(job.deploymentId);
    if (!d || d.status !== 'active') return;
    const target = this.offsite.target;
    if (!target) throw new KovaError('OFFSITE_NOT_CONFIGURED', 'this node has no off-node target', { status: 409 });
    // 1. The whole history, pulled into the local repository (created like the bucket's when missing).
    const remote = await openDeploymentRepo(target, d.id);
    if (!remote) throw new Error(`the off-node target holds no copy of deployment ${d.id}`);
    let pulled: Set<string>;
    try {
      await fs.mkdir(paths.repo(d.id), { recursive: true });
      const local = await Repository.open(paths.repo(d.id)).catch(async () => {
        const { chunker, packSize, compressionLevel } = remote.config;
        return Repository.init(paths.repo(d.id), {
          chunker: { minSize: chunker.minSize, avgSize: chunker.avgSize, maxSize: chunker.maxSize },
          packSize,
          compressionLevel,
        });
      });
      try {
        const rep = await copySnapshots(remote, local);
        pulled = new Set((await local.listSnapshots()).map((s) => s.id));
        log.info(
          { deployment: d.id, snapshots: rep.copied.length, bytes: rep.rawBytesSent },
          'pulled the repository from the off-node target',
        );
      } finally {
        await local.close();
      }
    } finally {
      await remote.close();
    }
    store.tx(() => {
      for (const s of store.snapshots.list(d.id)) {
        if (s.status === 'ready' && s.engineId && !pulled.has(s.engineId)) {
          store.offsite.removeCopy(s.id);
          store.snapshots.delete(s.id);
        }
      }
    });
    // 2. Fresh volumes from the chosen snapshot.
    const engineId = job.payload.engineId as string;
    if (!pulled.has(engineId)) throw new Error(`snapshot ${String(job.payload.snapshotId)} did not come back from the off-node target`);
    await runtime.remove(d.id).catch(() => undefined);
    await fs.rm(paths.deploymentVolumes(d.id), { recursive: true, force: true });
    await restoreVolumes(paths, d.id, d.manifest, engineId);
    // 3. The services.
    await runtime.create(runtimeSpec(paths, d.id, d.manifest));
    await runtime.start(d.id);
    log.info({ deployment: d.id, snapshot: job.payload.snapshotId }, 'recovered the deployment from its off-node copy');
  }

  /**
   * forget stops and removes a deployment's services and deletes its rows
   * from this node's journal, leaving its volumes and repository on disk.
   * A deployment this node does not have (or no longer has) is no error.
   */
  async forget(userId: string, depId: string): Promise<void> {
    const { store, runtime, log, paths } = this.ctx;
    const d = store.deployments.get(depId);
    if (!d) return;
    if (d.userId !== userId) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `deployment ${depId} not found`);
    await runtime.remove(depId);
    store.tx(() => {
      for (const t of DEPLOYMENT_TABLES) store.db.prepare(`DELETE FROM ${t} WHERE deployment_id = ?`).run(depId);
      store.db.prepare('DELETE FROM deployments WHERE id = ?').run(depId);
      store.db.prepare('DELETE FROM sync_versions WHERE deployment_id = ?').run(depId);
    });
    log.warn(
      { deployment: depId, volumes: paths.deploymentVolumes(depId), repository: paths.repo(depId) },
      'this deployment was recovered on another node: stopped and forgotten here; its data is left on disk for the operator',
    );
  }
}
