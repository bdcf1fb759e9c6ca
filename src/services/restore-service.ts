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
 * Selected paths (restore-paths.ts): `replace` goes through the same
 * steps, but stages only the chosen paths (the restorer reads nothing
 * else) and, with the services stopped, exchanges each chosen live entry
 * with its staged one (or renames the staged one in when the live one is
 * absent), one atomic rename per path, journalled by inode like volumes: a
 * crash leaves each chosen path entirely old or entirely restored, and the
 * restore resumes at start-up. `alongside` takes no safety snapshot and
 * stops nothing: the chosen paths are restored into a temporary folder
 * `.kova-restore-<restore>` next to `into` inside the volume (`restoring`),
 * which is renamed to `into` (`swapping`, recorded by inode), so `into`
 * never holds a half-written restore; a crash before the rename starts the
 * restore over, after it just completes.
 *
 * Space: the staged copy needs room next to the live volumes. A restore is
 * refused (INSUFFICIENT_SPACE, 507) when the request is made and again when
 * its job starts, before the safety snapshot and before any service stops,
 * if that filesystem has less free space than the snapshot's volumes take.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { iso } from '../core/clock.js';
import { ConflictError, DiskFullError, InsufficientSpaceError, KovaError, NotFoundError } from '../core/errors.js';
import { faultPoint } from '../core/faults.js';
import { newId } from '../core/ids.js';
import {
  type Repository,
  type SpaceNeed,
  type TreeNode,
  addNeeds,
  checkSpace,
  fsyncDir,
  native,
  resolvePath,
  restoreFootprint,
  roomFor,
  setTimesNs,
  spaceBound,
  syncfs,
} from '../engine/index.js';
import type { Deployment } from '../db/deployments.js';
import type { Job } from '../db/jobs.js';
import type { Restore, RestoreItem, RestoreJournal, RestoreSelection, RestoreVolumes } from '../db/restores.js';
import type { Snapshot } from '../db/snapshots.js';
import { JobKind, type ServiceContext } from './context.js';
import { activeDeployment, assertIdle, sanitize } from './guards.js';
import { type VolumeRef, volumesOf } from './paths.js';
import { openRepo } from './repos.js';
import type { SnapshotService } from './snapshot-service.js';
import {
  type LivePlan,
  type RestoreMode,
  type SelectionRequest,
  checkInto,
  checkLiveAncestors,
  checkShape,
  intoParts,
  livePlan,
  makeIntoParents,
  makeLiveAncestors,
  resolveSelection,
} from './restore-paths.js';
import { type SnapshotVolume, type VolumeMapping, assertRestorable, mapVolumes, snapshotVolumes } from './volume-map.js';

/** What the restore plan says about one chosen path. */
export interface PathPlan extends LivePlan {
  readonly path: string;
  /** The current volume it goes into ("service.volume"). */
  readonly volume: string;
  /** Where it goes, as shown paths are: "service/volume/…" (under `into` when alongside). */
  readonly target: string;
  /** Its type in the snapshot. */
  readonly type: TreeNode['type'];
  /** replace: an entry is there now and is exchanged; create: nothing is there now. */
  readonly action: 'replace' | 'create';
}

/** A restore plan: where each volume goes, why it would be refused, and for selected paths what each does. */
export interface RestorePlanResult {
  readonly mapping: VolumeMapping;
  readonly refusal: KovaError | null;
  readonly selection: { readonly mode: RestoreMode; readonly into: string | null; readonly paths: readonly PathPlan[] } | null;
}

/** The journal key of a chosen path. */
const itemKey = (it: RestoreItem): string => `${it.to}:${it.rel}`;
/** The components of an item's path inside its volume. */
const relParts = (it: RestoreItem): Buffer[] => (it.rel === '' ? [] : it.rel.split('/').map((c) => Buffer.from(c)));
/** A volume key shown as the browse API shows it: "service/volume". */
const shownVolume = (key: string): string => key.replace('.', '/');

const PROGRESS_EVERY_MS = 250;
const isoOrNull = (t: number | null): string | null => (t === null ? null : iso(t));

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
   * and why it would be refused, without doing anything. With selected
   * paths, it also tells for each what the restore does to the live volume.
   * An invalid selection throws (400/404); a restore that would be refused
   * for the state of the deployment (409) is a `refusal`.
   */
  async plan(userId: string, depId: string, snapId: string, wanted?: SelectionRequest): Promise<RestorePlanResult> {
    const shape = wanted ? checkShape(wanted) : null;
    const { snap } = this.readySnapshot(userId, depId, snapId);
    if (shape) return this.planSelection(userId, depId, snapId, shape);
    const inSnapshot = await this.volumesIn(depId, snap.engineId!).catch((err: unknown) => {
      // Its messages may name host paths: a server-side failure, logged and not shown.
      throw new KovaError('INTERNAL_ERROR', 'could not read the snapshot from the repository', { status: 500, cause: err });
    });
    const { dep } = this.readySnapshot(userId, depId, snapId);
    const mapping = mapVolumes(inSnapshot, volumesOf(dep.manifest));
    try {
      assertRestorable(snapId, mapping);
      return { mapping, refusal: null, selection: null };
    } catch (err) {
      if (err instanceof KovaError) return { mapping, refusal: err, selection: null };
      throw err;
    }
  }

  private async planSelection(
    userId: string,
    depId: string,
    snapId: string,
    shape: NonNullable<ReturnType<typeof checkShape>>,
  ): Promise<RestorePlanResult> {
    const { dep, snap } = this.readySnapshot(userId, depId, snapId);
    const current = volumesOf(dep.manifest);
    return this.withSnapshot(depId, snap.engineId!, async (repo, root, inSnapshot) => {
      const full = mapVolumes(inSnapshot, current);
      let refusal: KovaError | null = null;
      let resolved;
      try {
        resolved = await resolveSelection(repo, root, snapId, shape, full);
      } catch (err) {
        if (!(err instanceof KovaError) || err.status !== 409) throw err;
        return { mapping: full, refusal: err, selection: { mode: shape.mode, into: shape.into, paths: [] } };
      }
      const { selection, nodes } = resolved;
      const mapping = this.chosenMapping(full, selection, current);
      const paths: PathPlan[] = [];
      for (const it of selection.items) {
        const node = nodes.get(it.path)!;
        const base = this.ctx.paths.volume(depId, this.volumeRef(current, it.to));
        if (shape.mode === 'alongside') {
          const target = [shownVolume(it.to), ...intoParts(shape.into!), ...(it.rel ? [it.rel] : [])].join('/');
          paths.push({
            path: it.path,
            volume: it.to,
            target,
            type: node.type,
            action: 'create',
            live: null,
            removed: [],
            removedMore: false,
          });
          continue;
        }
        const target = [shownVolume(it.to), ...(it.rel ? [it.rel] : [])].join('/');
        const live = await livePlan(repo, node, it.rel ? path.join(base, it.rel) : base, target);
        paths.push({ path: it.path, volume: it.to, target, type: node.type, action: live.live === null ? 'create' : 'replace', ...live });
      }
      try {
        await this.checkLive(dep, selection);
      } catch (err) {
        if (!(err instanceof KovaError)) throw err;
        refusal = err;
      }
      return { mapping, refusal, selection: { mode: shape.mode, into: shape.into, paths } };
    });
  }

  /** chosenMapping is the mapping restricted to the volumes a selection touches. */
  private chosenMapping(full: VolumeMapping, selection: RestoreSelection, current: readonly VolumeRef[]): VolumeMapping {
    const chosen = new Set(selection.items.map((i) => i.to));
    return {
      pairs: full.pairs.filter((p) => chosen.has(p.to)),
      missing: [],
      notInSnapshot: current.filter((c) => !chosen.has(c.key)).map((c) => c.key),
    };
  }

  private volumeRef(current: readonly VolumeRef[], key: string): VolumeRef {
    const v = current.find((c) => c.key === key);
    if (!v) {
      throw new KovaError('VOLUMES_CHANGED', `the volume ${key} is no longer in the deployment; nothing was changed`, { status: 409 });
    }
    return v;
  }

  /**
   * withSnapshot opens the deployment's repository and hands `fn` the
   * snapshot's root and its volumes; a repository that can't be read is a
   * server-side failure (500, its message may name host paths).
   */
  private async withSnapshot<T>(
    depId: string,
    engineId: string,
    fn: (repo: Repository, root: TreeNode, volumes: SnapshotVolume[]) => Promise<T>,
  ): Promise<T> {
    let repo: Repository;
    let record;
    let names: string[];
    try {
      repo = await openRepo(this.ctx.paths, depId, false);
    } catch (err) {
      throw new KovaError('INTERNAL_ERROR', 'could not read the snapshot from the repository', { status: 500, cause: err });
    }
    try {
      try {
        record = await repo.findSnapshot(engineId);
        names = record.root.subtree ? (await repo.readTree(record.root.subtree)).map((n) => n.name.toString()) : [];
      } catch (err) {
        throw new KovaError('INTERNAL_ERROR', 'could not read the snapshot from the repository', { status: 500, cause: err });
      }
      return await fn(repo, record.root, snapshotVolumes(record.tags, names));
    } finally {
      await repo.close();
    }
  }

  /**
   * checkLive checks the live side of a selection: for replace, no symlink
   * or file where a folder leading to a chosen path is; for alongside,
   * `into` stays in the volume and is absent or empty.
   */
  private async checkLive(dep: Deployment, selection: RestoreSelection): Promise<void> {
    const current = volumesOf(dep.manifest);
    for (const it of selection.items) {
      const base = this.ctx.paths.volume(dep.id, this.volumeRef(current, it.to));
      if (selection.mode === 'alongside') await checkInto(base, selection.into!);
      else await checkLiveAncestors(base, it.rel, it.path);
    }
  }

  /** selectionNodes finds the snapshot node of each chosen path. */
  private async selectionNodes(repo: Repository, root: TreeNode, selection: RestoreSelection): Promise<TreeNode[]> {
    const volumes = root.subtree ? await repo.readTree(root.subtree) : [];
    const out: TreeNode[] = [];
    for (const it of selection.items) {
      const volume = volumes.find((v) => v.name.toString() === it.from);
      if (!volume) throw new KovaError('VOLUMES_CHANGED', `the snapshot has no volume ${it.from}`, { status: 409 });
      out.push(await resolvePath(repo, volume, relParts(it)));
    }
    return out;
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
    wanted?: SelectionRequest,
    opts: { readonly id?: string } = {},
  ): Promise<Restore> {
    const shape = wanted ? checkShape(wanted) : null;
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
    if (shape) return this.requestSelection(userId, depId, snapId, safetySnapshot, shape, opts.id);
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

  /**
   * requestSelection starts a restore of selected paths: the paths are
   * checked against the snapshot (404 PATH_NOT_FOUND) and the live volumes
   * (409), and the staged copy of the chosen paths against free space (507),
   * before anything is done. Alongside takes no safety snapshot.
   */
  private async requestSelection(
    userId: string,
    depId: string,
    snapId: string,
    safetySnapshot: boolean,
    shape: NonNullable<ReturnType<typeof checkShape>>,
    presetId?: string,
  ): Promise<Restore> {
    const { store, clock } = this.ctx;
    const first = store.tx(() => {
      const found = this.readySnapshot(userId, depId, snapId);
      assertIdle(store, depId);
      return found;
    });
    const { selection, needed, mapping } = await this.withSnapshot(depId, first.snap.engineId!, async (repo, root, inSnapshot) => {
      const current = volumesOf(first.dep.manifest);
      const full = mapVolumes(inSnapshot, current);
      const resolved = await resolveSelection(repo, root, snapId, shape, full);
      const needs: SpaceNeed[] = [];
      for (const node of resolved.nodes.values()) needs.push(await restoreFootprint(repo, node));
      return { selection: resolved.selection, needed: addNeeds(needs), mapping: this.chosenMapping(full, resolved.selection, current) };
    });
    await this.checkLive(first.dep, selection);
    await checkSpace('restore', this.ctx.paths.deploymentVolumes(depId), needed);
    // Again in the transaction that queues the job: the SDL may have changed meanwhile.
    return store.tx(() => {
      const { dep } = this.readySnapshot(userId, depId, snapId);
      assertIdle(store, depId);
      const current = volumesOf(dep.manifest);
      for (const it of selection.items) this.volumeRef(current, it.to);
      const id = presetId ?? newId('rst');
      const volumes: RestoreVolumes = { pairs: mapping.pairs, notInSnapshot: mapping.notInSnapshot };
      store.restores.insert({
        id,
        deploymentId: depId,
        snapshotId: snapId,
        safetySnapshot: shape.mode === 'alongside' ? false : safetySnapshot,
        volumes,
        selection,
        createdAt: clock.now(),
      });
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
        await this.checkSpace(dep, snap, new Set(r.volumes!.pairs.map((p) => p.from)), r.selection);
        if (r.status === 'pending') r = await this.safetySnapshot(r, dep);
        faultPoint('restore:restoring');
        r = r.selection ? await this.stageSelection(r, dep, snap) : await this.stage(r, dep, snap);
        faultPoint('restore:staged');
      }
      if (r.status === 'swapping') {
        if (r.selection?.mode === 'alongside') await this.placeAlongside(r, dep);
        else if (r.selection) await this.swapPaths(r, dep);
        else await this.swap(r, dep);
      }
      const done = store.restores.get(id)!;
      metrics.restores.inc({ outcome: 'completed' });
      metrics.restoreDuration.observe((clock.now() - done.createdAt) / 1000);
      if (done.downtimeMs !== null) metrics.restoreDowntime.observe(done.downtimeMs / 1000);
      this.ctx.events?.emit('restore.completed', dep.id, {
        restore: { id, snapshotId: done.snapshotId, finishedAt: isoOrNull(done.finishedAt), downtimeMs: done.downtimeMs },
      });
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
      this.ctx.events?.emit('restore.failed', dep.id, { restore: { id, snapshotId: current.snapshotId, error: message } });
      // Alongside, the temporary folder is never part of the live data: it goes whatever the step.
      if ((current.status !== 'swapping' || current.selection?.mode === 'alongside') && current.journal.stagingDir) {
        await fs.rm(current.journal.stagingDir, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }

  /**
   * checkSpace refuses the restore when the staged copy of the snapshot
   * volumes `from` (or of the selected paths) would not fit next to the
   * live ones.
   */
  private async checkSpace(
    dep: Deployment,
    snap: Snapshot,
    from: ReadonlySet<string>,
    selection: RestoreSelection | null = null,
  ): Promise<void> {
    const repo = await openRepo(this.ctx.paths, dep.id, false);
    const target = this.ctx.paths.deploymentVolumes(dep.id);
    const needs: SpaceNeed[] = [];
    try {
      const record = await repo.findSnapshot(snap.engineId!);
      // Any part of the snapshot fits when the bound on all of it does: no tree is read then.
      if (await roomFor(target, spaceBound(record.stats))) return;
      if (selection) {
        for (const node of await this.selectionNodes(repo, record.root, selection)) needs.push(await restoreFootprint(repo, node));
      } else {
        for (const node of await repo.readTree(record.root.subtree!)) {
          if (node.type === 'dir' && from.has(node.name.toString())) needs.push(await restoreFootprint(repo, node));
        }
      }
    } finally {
      await repo.close();
    }
    await checkSpace('restore', target, addNeeds(needs));
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

  /**
   * stageSelection restores the chosen paths: for replace into the staging
   * directory (one folder per current volume, holding only the chosen paths
   * and the folders leading to them), for alongside into the temporary
   * folder next to `into`; then records the staged inodes and flushes.
   * Nothing live is touched here.
   */
  private async stageSelection(r: Restore, dep: Deployment, snap: Snapshot): Promise<Restore> {
    const { store, paths } = this.ctx;
    const sel = r.selection!;
    const current = volumesOf(dep.manifest);
    const byVolume = new Map<string, RestoreItem[]>();
    for (const it of sel.items) {
      this.volumeRef(current, it.to);
      byVolume.set(it.to, [...(byVolume.get(it.to) ?? []), it]);
    }
    let staging: string;
    if (sel.mode === 'alongside') {
      const base = paths.volume(dep.id, this.volumeRef(current, sel.items[0]!.to));
      await checkInto(base, sel.into!);
      staging = path.join(await makeIntoParents(base, sel.into!), `.kova-restore-${r.id}`);
    } else {
      for (const it of sel.items) await checkLiveAncestors(paths.volume(dep.id, this.volumeRef(current, it.to)), it.rel, it.path);
      staging = paths.staging(dep.id, r.id);
    }
    await fs.rm(staging, { recursive: true, force: true });
    if (sel.mode === 'replace') await fs.mkdir(staging, { recursive: true });
    store.restores.update(r.id, { journal: { stagingDir: staging } });
    const staged: Record<string, string> = {};
    let done = 0;
    let last = 0;
    const repo = await openRepo(paths, dep.id, false);
    try {
      const record = await repo.findSnapshot(snap.engineId!);
      for (const [to, items] of byVolume) {
        const target = sel.mode === 'alongside' ? staging : path.join(staging, to);
        const whole = items.some((i) => i.rel === '');
        const res = await repo.restore(record, target, {
          subpath: items[0]!.from,
          ...(whole ? {} : { include: items.map(relParts) }),
          checkSpace: false, // checked for all paths at once, before anything stopped
          onProgress: (p) => {
            const now = Date.now();
            if (now - last < PROGRESS_EVERY_MS) return;
            last = now;
            store.restores.update(r.id, { progressDone: done + p.bytesDone, progressTotal: null });
          },
        });
        done += res.bytes;
        if (sel.mode === 'alongside') staged.into = (await inodeOf(staging))!;
        else for (const it of items) staged[itemKey(it)] = (await inodeOf(path.join(target, it.rel)))!;
      }
    } finally {
      await repo.close();
    }
    const fh = await fs.open(staging, 'r');
    try {
      await syncfs(fh.fd);
    } finally {
      await fh.close();
    }
    const journal: RestoreJournal = { stagingDir: staging, staged };
    store.restores.update(r.id, { status: 'swapping', journal, progressDone: done, progressTotal: done });
    return store.restores.get(r.id)!;
  }

  /**
   * swapPaths stops the services, exchanges each chosen live entry with its
   * staged one (or renames the staged one in, creating the folders leading
   * to it, when the live one is absent), then starts the services. An entry
   * whose live path already has the staged inode was done before a crash.
   * A failure puts back what was done, so no path is left half restored.
   */
  private async swapPaths(r: Restore, dep: Deployment): Promise<void> {
    const { store, clock, runtime, paths } = this.ctx;
    const journal = r.journal;
    const current = volumesOf(dep.manifest);
    const t0 = performance.now();
    store.restores.update(r.id, { journal: { ...journal, swapStartedAt: clock.now() } });
    await runtime.stop(dep.id);
    faultPoint('restore:stopped');
    const done: Array<{ live: string; staged: string; created: boolean }> = [];
    try {
      for (const it of r.selection!.items) {
        const stagedIno = journal.staged?.[itemKey(it)];
        if (!stagedIno) continue;
        const base = paths.volume(dep.id, this.volumeRef(current, it.to));
        const live = it.rel ? path.join(base, it.rel) : base;
        const stagedVolume = path.join(journal.stagingDir!, it.to);
        const staged = it.rel ? path.join(stagedVolume, it.rel) : stagedVolume;
        if ((await inodeOf(live)) === stagedIno) continue; // swapped before a crash
        await fs.mkdir(it.rel ? base : path.dirname(base), { recursive: true });
        await makeLiveAncestors(base, stagedVolume, it.rel, it.path);
        // The folder holding the path keeps its times: only the chosen path changes.
        const parent = it.rel ? await fs.lstat(path.dirname(live), { bigint: true }) : null;
        const created = (await inodeOf(live)) === null;
        if (created) await fs.rename(staged, live);
        else native.renameExchange(staged, live);
        done.push({ live, staged, created });
        if (parent) setTimesNs(path.dirname(live), parent.atimeNs, parent.mtimeNs);
        await fsyncDir(path.dirname(live));
        await fsyncDir(path.dirname(staged));
        faultPoint('restore:swapped-one');
      }
    } catch (err) {
      for (const d of done.reverse()) {
        try {
          if (d.created) await fs.rename(d.live, d.staged);
          else native.renameExchange(d.staged, d.live);
        } catch (undo) {
          this.ctx.log.error({ err: undo, restore: r.id }, 'could not undo the restore of a path');
        }
      }
      await runtime.start(dep.id).catch(() => undefined);
      throw err;
    }
    faultPoint('restore:swapped');
    await runtime.start(dep.id);
    store.restores.update(r.id, { status: 'completed', finishedAt: clock.now(), downtimeMs: Math.round(performance.now() - t0) });
  }

  /**
   * placeAlongside renames the temporary folder to `into` (nothing stops):
   * `into` must still be absent or empty; already done before a crash when
   * it has the staged inode.
   */
  private async placeAlongside(r: Restore, dep: Deployment): Promise<void> {
    const { store, clock, paths } = this.ctx;
    const sel = r.selection!;
    const base = paths.volume(dep.id, this.volumeRef(volumesOf(dep.manifest), sel.items[0]!.to));
    const into = path.join(base, ...intoParts(sel.into!));
    if ((await inodeOf(into)) !== r.journal.staged?.into) {
      await checkInto(base, sel.into!);
      await fs.rename(r.journal.stagingDir!, into);
      await fsyncDir(path.dirname(into));
    }
    faultPoint('restore:placed');
    store.restores.update(r.id, { status: 'completed', finishedAt: clock.now() });
  }
}
