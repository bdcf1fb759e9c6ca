/**
 * restore-service: staged restores, journalled step by step.
 *
 *   pending    unless turned off, a safety snapshot of the current state
 *              ("before-restore-<snapshot>", manual: never pruned);
 *   restoring  the snapshot is restored into a staging directory next to
 *              the volumes (same filesystem) while the services keep running,
 *              then flushed to disk;
 *   swapping   the services stop, each live volume directory is exchanged
 *              with its staged one (renameat2 RENAME_EXCHANGE: atomic), the
 *              services start; the time they were down is `downtimeMs`;
 *   completed  the old data (now in the staging directory) is deleted in the
 *              background.
 *
 * Which snapshot volume goes into which current volume is decided when the
 * restore is requested (volume-map: by name, else mount path, else position,
 * one-to-one) and recorded with it. A snapshot volume with nowhere to go
 * refuses the request (409 VOLUMES_CHANGED) before anything is done; a
 * current volume the snapshot does not hold is neither staged nor swapped:
 * it keeps its data.
 *
 * The journal records the staged directories' inodes before the swap. After
 * a crash the job is re-run and resumes from the recorded status: before the
 * swap it starts the restore over (the live volumes were never touched);
 * during the swap it exchanges only volumes whose live directory is not yet
 * the staged inode, then starts the services. Either way each volume ends
 * entirely old or entirely restored, and the services run.
 *
 * Space: the staged copy needs room next to the live volumes. A restore is
 * refused (INSUFFICIENT_SPACE, 507) when the request is made and again when
 * its job starts, before the safety snapshot and before any service stops,
 * if that filesystem has less free space than the snapshot's volumes take.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, DiskFullError, InsufficientSpaceError, KovaError, NotFoundError } from '../core/errors.js';
import { faultPoint } from '../core/faults.js';
import { newId } from '../core/ids.js';
import { checkSpace, fsyncDir, native, restoreFootprint, syncfs } from '../engine/index.js';
import type { Deployment } from '../db/deployments.js';
import type { Job } from '../db/jobs.js';
import type { Restore, RestoreJournal, RestoreVolumes } from '../db/restores.js';
import type { Snapshot } from '../db/snapshots.js';
import { JobKind, type ServiceContext } from './context.js';
import { activeDeployment, assertIdle, sanitize } from './guards.js';
import { volumesOf } from './paths.js';
import { openRepo } from './repos.js';
import type { SnapshotService } from './snapshot-service.js';
import { type SnapshotVolume, type VolumeMapping, assertRestorable, mapVolumes, snapshotVolumes } from './volume-map.js';

const PROGRESS_EVERY_MS = 250;

async function inodeOf(p: string): Promise<string | null> {
  try {
    return (await fs.lstat(p, { bigint: true })).ino.toString();
  } catch {
    return null;
  }
}

export class RestoreService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly snapshots: SnapshotService,
  ) {
    ctx.jobs.register(JobKind.Restore, (job) => this.restoreJob(job));
  }

  get(userId: string, depId: string, restoreId: string): Restore {
    activeDeployment(this.ctx.store, userId, depId);
    const r = this.ctx.store.restores.inDeployment(depId, restoreId);
    if (!r) throw new NotFoundError('RESTORE_NOT_FOUND', `restore ${restoreId} not found`);
    return r;
  }

  list(userId: string, depId: string): Restore[] {
    activeDeployment(this.ctx.store, userId, depId);
    return this.ctx.store.restores.list(depId);
  }

  /** readySnapshot returns a deployment's snapshot that can be restored (404 / 409 otherwise). */
  private readySnapshot(userId: string, depId: string, snapId: string): { dep: Deployment; snap: Snapshot } {
    const { store } = this.ctx;
    const dep = activeDeployment(store, userId, depId);
    const snap = store.snapshots.inDeployment(depId, snapId);
    if (!snap) throw new NotFoundError('SNAPSHOT_NOT_FOUND', `snapshot ${snapId} not found`);
    if (snap.status !== 'ready') throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} is ${snap.status}, not ready`);
    if (!snap.engineId) throw new ConflictError('SNAPSHOT_NOT_READY', `snapshot ${snapId} has no stored data`);
    return { dep, snap };
  }

  /** volumesIn lists the volumes a snapshot holds, read from the repository. */
  private async volumesIn(depId: string, engineId: string): Promise<SnapshotVolume[]> {
    const repo = await openRepo(this.ctx.paths, depId, false);
    try {
      const record = await repo.findSnapshot(engineId);
      const names = record.root.subtree ? (await repo.readTree(record.root.subtree)).map((n) => n.name.toString()) : [];
      return snapshotVolumes(record.tags, names);
    } finally {
      await repo.close();
    }
  }

  /**
   * plan tells where a restore of the snapshot would put each of its volumes,
   * and why it would be refused, without doing anything.
   */
  async plan(userId: string, depId: string, snapId: string): Promise<{ mapping: VolumeMapping; refusal: KovaError | null }> {
    const { snap } = this.readySnapshot(userId, depId, snapId);
    const inSnapshot = await this.volumesIn(depId, snap.engineId!).catch((err: unknown) => {
      // Its messages may name host paths: a server-side failure, logged and not shown.
      throw new KovaError('INTERNAL_ERROR', 'could not read the snapshot from the repository', { status: 500, cause: err });
    });
    const { dep } = this.readySnapshot(userId, depId, snapId);
    const mapping = mapVolumes(inSnapshot, volumesOf(dep.manifest));
    try {
      assertRestorable(snapId, mapping);
      return { mapping, refusal: null };
    } catch (err) {
      if (err instanceof KovaError) return { mapping, refusal: err };
      throw err;
    }
  }

  /**
   * request starts restoring a ready snapshot (202: it is `pending`). Its
   * volumes are mapped onto the deployment's current ones first; a snapshot
   * volume with nowhere to go answers 409 VOLUMES_CHANGED, and a staged copy
   * that would not fit answers 507 INSUFFICIENT_SPACE; either way nothing is
   * done. `opts.id` is an id chosen elsewhere (the control plane, in network
   * mode): a restore of this deployment that already has it is returned as
   * it is, whatever its state, so a repeated request starts no second one.
   */
  async request(
    userId: string,
    depId: string,
    snapId: string,
    safetySnapshot: boolean,
    opts: { readonly id?: string } = {},
  ): Promise<Restore> {
    const { store, clock } = this.ctx;
    // A pre-assigned id (network mode) that already names a restore of this deployment: a repeated request.
    const repeated = (): Restore | undefined => {
      if (opts.id === undefined) return undefined;
      activeDeployment(store, userId, depId);
      const existing = store.restores.get(opts.id);
      if (existing && existing.deploymentId === depId) return existing;
      if (existing) throw new ConflictError('ID_IN_USE', `the id ${opts.id} is already in use`);
      return undefined;
    };
    const before = store.tx(repeated);
    if (before) return before;
    const first = store.tx(() => {
      const found = this.readySnapshot(userId, depId, snapId);
      assertIdle(store, depId);
      return found;
    });
    // A repository that can't be read is the job's to report, as a failed restore (without host paths).
    const inSnapshot = await this.volumesIn(depId, first.snap.engineId!).catch((err: unknown) => {
      this.ctx.log.warn({ err, deployment: depId, snapshot: snapId }, 'could not read the volumes of the snapshot to restore');
      return null;
    });
    if (inSnapshot) {
      // Refused here only for lack of space; the job checks again before anything stops.
      const mapping = mapVolumes(inSnapshot, volumesOf(first.dep.manifest));
      await this.checkSpace(first.dep, first.snap, new Set(mapping.pairs.map((p) => p.from))).catch((err: unknown) => {
        if (err instanceof InsufficientSpaceError) throw err;
      });
    }
    // Again in the transaction that queues the job: the SDL may have changed meanwhile.
    return store.tx(() => {
      const again = repeated();
      if (again) return again;
      const { dep } = this.readySnapshot(userId, depId, snapId);
      assertIdle(store, depId);
      let volumes: RestoreVolumes | null = null;
      if (inSnapshot) {
        const mapping = mapVolumes(inSnapshot, volumesOf(dep.manifest));
        assertRestorable(snapId, mapping);
        volumes = { pairs: mapping.pairs, notInSnapshot: mapping.notInSnapshot };
      }
      const id = opts.id ?? newId('rst');
      store.restores.insert({ id, deploymentId: depId, snapshotId: snapId, safetySnapshot, volumes, createdAt: clock.now() });
      this.ctx.jobs.enqueue(depId, JobKind.Restore, { restoreId: id, snapshotId: snapId });
      return store.restores.get(id)!;
    });
  }

  private async restoreJob(job: Job): Promise<void> {
    const { store, clock, metrics } = this.ctx;
    const id = job.payload.restoreId as string;
    let r = store.restores.get(id);
    if (!r || r.status === 'completed' || r.status === 'failed') return;
    const dep = store.deployments.get(r.deploymentId)!;
    const snap = store.snapshots.get(r.snapshotId);
    try {
      if (r.status === 'pending' || r.status === 'restoring') {
        if (!snap || snap.status !== 'ready' || !snap.engineId)
          throw new KovaError('SNAPSHOT_NOT_READY', `snapshot ${r.snapshotId} is no longer available`);
        if (!r.volumes) r = await this.mapNow(r, dep, snap);
        // A staged copy left by a crash is started over: its space counts as free.
        if (r.status === 'restoring' && r.journal.stagingDir) await fs.rm(r.journal.stagingDir, { recursive: true, force: true });
        await this.checkSpace(dep, snap, new Set(r.volumes!.pairs.map((p) => p.from)));
        if (r.status === 'pending') r = await this.safetySnapshot(r, dep);
        faultPoint('restore:restoring');
        r = await this.stage(r, dep, snap);
        faultPoint('restore:staged');
      }
      if (r.status === 'swapping') await this.swap(r, dep);
      const done = store.restores.get(id)!;
      metrics.restores.inc({ outcome: 'completed' });
      metrics.restoreDuration.observe((clock.now() - done.createdAt) / 1000);
      if (done.downtimeMs !== null) metrics.restoreDowntime.observe(done.downtimeMs / 1000);
      this.ctx.disk.written();
      // The old data is in the staging directory now: delete it in the background.
      const staging = r.journal.stagingDir;
      if (staging)
        void fs
          .rm(staging, { recursive: true, force: true })
          .catch((err: unknown) => this.ctx.log.warn({ err }, 'could not remove old volume data'));
    } catch (err) {
      if (err instanceof DiskFullError) this.ctx.disk.full('restore target', err, { restore: id, deployment: dep.id });
      const current = store.restores.get(id)!;
      const message = sanitize(err instanceof Error ? err.message : String(err), this.ctx.paths.dataDir);
      store.restores.update(id, { status: 'failed', error: message, finishedAt: clock.now() });
      metrics.restores.inc({ outcome: 'failed' });
      this.ctx.log.warn({ err, restore: id, deployment: dep.id }, 'restore failed');
      if (current.status !== 'swapping' && current.journal.stagingDir) {
        await fs.rm(current.journal.stagingDir, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }

  /**
   * checkSpace refuses the restore when the staged copy of the snapshot
   * volumes `from` would not fit next to the live ones.
   */
  private async checkSpace(dep: Deployment, snap: Snapshot, from: ReadonlySet<string>): Promise<void> {
    const repo = await openRepo(this.ctx.paths, dep.id, false);
    let needed = 0;
    try {
      const record = await repo.findSnapshot(snap.engineId!);
      for (const node of await repo.readTree(record.root.subtree!)) {
        if (node.type === 'dir' && from.has(node.name.toString())) needed += await restoreFootprint(repo, node);
      }
    } finally {
      await repo.close();
    }
    await checkSpace('restore', this.ctx.paths.deploymentVolumes(dep.id), needed);
  }

  /**
   * mapNow maps the snapshot's volumes of a restore queued without a mapping
   * (its repository could not be read when requested, or it was requested
   * before volumes were mapped), before anything is done.
   */
  private async mapNow(r: Restore, dep: Deployment, snap: Snapshot): Promise<Restore> {
    const m = mapVolumes(await this.volumesIn(dep.id, snap.engineId!), volumesOf(dep.manifest));
    assertRestorable(snap.id, m);
    this.ctx.store.restores.update(r.id, { volumes: { pairs: m.pairs, notInSnapshot: m.notInSnapshot } });
    return this.ctx.store.restores.get(r.id)!;
  }

  /** safetySnapshot takes (or finishes) the snapshot of the current state, then moves on to `restoring`. */
  private async safetySnapshot(r: Restore, dep: Deployment): Promise<Restore> {
    const { store, clock } = this.ctx;
    if (r.safetySnapshot) {
      let safetyId = r.safetySnapshotId;
      if (!safetyId) {
        safetyId = store.tx(() => {
          const s = this.snapshots.insertRow(dep.id, 'before-restore', `before-restore-${r.snapshotId}`);
          store.restores.update(r.id, { safetySnapshotId: s.id });
          return s.id;
        });
      }
      const s = await this.snapshots.take(safetyId);
      if (s.status !== 'ready')
        throw new KovaError('SAFETY_SNAPSHOT_FAILED', `the safety snapshot failed, nothing was changed: ${s.error ?? 'unknown error'}`);
    }
    store.restores.update(r.id, { status: 'restoring', startedAt: clock.now() });
    return store.restores.get(r.id)!;
  }

  /**
   * stage restores every mapped volume into the staging directory and
   * records its inodes; a volume the snapshot does not hold is not staged.
   * Nothing live is touched here, so a mapping that no longer fits fails the
   * restore with the volumes as they were.
   */
  private async stage(r: Restore, dep: Deployment, snap: Snapshot): Promise<Restore> {
    const { store, paths } = this.ctx;
    const staging = paths.staging(dep.id, r.id);
    await fs.rm(staging, { recursive: true, force: true });
    await fs.mkdir(staging, { recursive: true });
    store.restores.update(r.id, { journal: { stagingDir: staging } });
    const repo = await openRepo(paths, dep.id, false);
    const staged: Record<string, string> = {};
    try {
      const record = await repo.findSnapshot(snap.engineId!);
      const names = record.root.subtree ? (await repo.readTree(record.root.subtree)).map((n) => n.name.toString()) : [];
      const current = volumesOf(dep.manifest);
      const mapping = r.volumes ?? { pairs: [], notInSnapshot: [] };
      const inSnapshot = new Set(names);
      const currentKeys = new Set(current.map((v) => v.key));
      const lost = mapping.pairs.filter((p) => !inSnapshot.has(p.from) || !currentKeys.has(p.to));
      if (lost.length > 0 || mapping.pairs.length === 0) {
        throw new KovaError(
          'VOLUMES_CHANGED',
          `the volumes changed since the restore was requested (${lost.map((p) => `${p.from} -> ${p.to}`).join(', ') || 'nothing to restore'}); nothing was changed`,
          { status: 409 },
        );
      }
      const total = snap.sizeBytes;
      let base = 0;
      let last = 0;
      for (const pair of mapping.pairs) {
        const target = path.join(staging, pair.to);
        const res = await repo.restore(record, target, {
          subpath: pair.from,
          checkSpace: false, // checked for all volumes at once, before anything stopped
          onProgress: (p) => {
            const now = Date.now();
            if (now - last < PROGRESS_EVERY_MS) return;
            last = now;
            store.restores.update(r.id, { progressDone: base + p.bytesDone, progressTotal: total });
          },
        });
        base += res.bytes;
        staged[pair.to] = (await inodeOf(target))!;
      }
    } finally {
      await repo.close();
    }
    // Everything staged is on disk before any live volume is touched.
    const fh = await fs.open(staging, 'r');
    try {
      await syncfs(fh.fd);
    } finally {
      await fh.close();
    }
    const journal: RestoreJournal = { stagingDir: staging, staged };
    store.restores.update(r.id, { status: 'swapping', journal, progressDone: snap.sizeBytes, progressTotal: snap.sizeBytes });
    return store.restores.get(r.id)!;
  }

  /** swap stops the services, exchanges staged and live volumes, starts the services. */
  private async swap(r: Restore, dep: Deployment): Promise<void> {
    const { store, clock, runtime, paths } = this.ctx;
    const journal = r.journal;
    const t0 = performance.now();
    store.restores.update(r.id, { journal: { ...journal, swapStartedAt: clock.now() } });
    await runtime.stop(dep.id);
    faultPoint('restore:stopped');
    const done: string[] = [];
    try {
      for (const v of volumesOf(dep.manifest)) {
        const stagedIno = journal.staged?.[v.key];
        if (!stagedIno) continue;
        const live = paths.volume(dep.id, v);
        const staged = path.join(journal.stagingDir!, v.key);
        if ((await inodeOf(live)) === stagedIno) continue; // swapped before a crash
        await fs.mkdir(path.dirname(live), { recursive: true });
        if ((await inodeOf(live)) === null) await fs.rename(staged, live);
        else native.renameExchange(staged, live);
        done.push(v.key);
        await fsyncDir(path.dirname(live));
        await fsyncDir(journal.stagingDir!);
        faultPoint('restore:swapped-one');
      }
    } catch (err) {
      // Put back what was exchanged, so no volume is left half restored.
      for (const key of done.reverse()) {
        const v = volumesOf(dep.manifest).find((x) => x.key === key)!;
        try {
          native.renameExchange(path.join(journal.stagingDir!, key), paths.volume(dep.id, v));
        } catch (undo) {
          this.ctx.log.error({ err: undo, restore: r.id }, 'could not undo a volume swap');
        }
      }
      await runtime.start(dep.id).catch(() => undefined);
      throw err;
    }
    faultPoint('restore:swapped');
    await runtime.start(dep.id);
    store.restores.update(r.id, { status: 'completed', finishedAt: clock.now(), downtimeMs: Math.round(performance.now() - t0) });
  }
}
