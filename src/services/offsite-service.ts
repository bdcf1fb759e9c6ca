/**
 * offsite-service: off-node copies of every deployment's snapshots in an
 * S3-compatible bucket (offsite-target.ts), and of the catalogue.
 *
 * A snapshot turning ready (any trigger) is queued for copying in the same
 * transaction (db/offsite.ts: the pending copies, resumed after a restart);
 * a deleted one queues the removal of its copy. A loop, separate from the
 * job queue so it never holds up snapshots or restores, works through them:
 * at most one task per deployment at a time, each doing in order
 *   1. the removals due (the snapshot records in the bucket repository),
 *      which make the bucket's batched gc due one gc interval later;
 *   2. the copies due, all of the deployment's at once, with copy.ts (only
 *      missing blobs are sent, each checked against its id, crash-safe
 *      order), under a read lock on the local repository (snapshots and
 *      restores go on; a local gc waits) and a write lock on the bucket's;
 *      a snapshot reads `copied` only once its record is read back from the
 *      bucket, after its data and index;
 *   3. the bucket's gc when due (it takes the bucket repository's exclusive
 *      lock, so it never runs with a copy).
 * A failed attempt marks the copies `failed` with the error, counts in
 * kova_offsite_copies_total{outcome="failed"}, reports offsite.failed when
 * they were not failed already, and is retried with exponential backoff.
 *
 * The catalogue (offsite-catalogue.ts) is written to the bucket when the
 * database changed and its content differs from the last one written, at
 * most once per catalogueDebounceMs; not on a node of a network (option
 * `catalogue: false`), where the control plane's database is the catalogue.
 */
import { iso } from '../core/clock.js';
import { KovaError } from '../core/errors.js';
import type { Repository } from '../engine/index.js';
import { copySnapshots } from '../engine/repo/copy.js';
import type { OffsiteSink, ServiceContext } from './context.js';
import { sanitize } from './guards.js';
import { CATALOGUE_OBJECT, catalogueDigest, dumpCatalogue, encodeCatalogue } from './offsite-catalogue.js';
import { type OffsiteTarget, openCatalogueStore, openDeploymentRepo } from './offsite-target.js';
import { openRepo } from './repos.js';

export const OFFSITE_DEFAULTS = {
  /** How often the loop looks for due work. */
  pollMs: 1000,
  /** First retry delay after a failed attempt; doubles each attempt up to retryMaxMs. */
  retryBaseMs: 30_000,
  retryMaxMs: 3_600_000,
  /** Shortest time between two writes of the catalogue. */
  catalogueDebounceMs: 5000,
  /** Write the catalogue to the bucket; off on a node of a network, whose catalogue is the control plane's database. */
  catalogue: true,
} as const;

export interface OffsiteOptions {
  readonly pollMs?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly catalogueDebounceMs?: number;
  readonly catalogue?: boolean;
}

/** retryDelay is the wait after the `attempts`-th failed attempt (1: the first). */
export function retryDelay(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, attempts - 1)));
}

export class OffsiteService implements OffsiteSink {
  private readonly opts: Required<OffsiteOptions>;
  private readonly running = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private catalogueTask: Promise<void> | null = null;
  private lastChanges = -1;
  private lastDigest: string | null = null;
  private lastCatalogueAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly ctx: ServiceContext,
    readonly target: OffsiteTarget | null,
    opts: OffsiteOptions = {},
  ) {
    this.opts = { ...OFFSITE_DEFAULTS, ...opts };
  }

  get configured(): boolean {
    return this.target !== null;
  }

  enabledFor(deploymentId: string): boolean {
    return this.target !== null && (this.ctx.store.offsite.enabled(deploymentId) ?? true);
  }

  /** setEnabled records a deployment's choice; turning copies off leaves the copies made so far. */
  setEnabled(deploymentId: string, enabled: boolean): void {
    this.ctx.store.offsite.setEnabled(deploymentId, enabled);
  }

  snapshotReady(deploymentId: string, snapshotId: string): void {
    if (!this.enabledFor(deploymentId)) return;
    this.ctx.store.offsite.queue(snapshotId, deploymentId, this.ctx.clock.now());
  }

  snapshotDeleted(deploymentId: string, snapshotId: string, engineId: string | null): void {
    const { store, clock } = this.ctx;
    const had = store.offsite.get(snapshotId);
    store.offsite.removeCopy(snapshotId);
    if (had && engineId && this.target) store.offsite.queueDelete(deploymentId, engineId, clock.now());
  }

  deploymentClosed(deploymentId: string): void {
    this.ctx.store.offsite.forgetDeployment(deploymentId);
  }

  /** start resumes copies a restart interrupted and runs the loop. */
  start(): void {
    if (!this.target) return;
    const reset = this.ctx.store.offsite.resetInterrupted();
    if (reset > 0) this.ctx.log.warn({ copies: reset }, 'resuming off-node copies interrupted by a restart');
    this.timer = setInterval(() => void this.runDue(), this.opts.pollMs);
    this.timer.unref();
  }

  /** stop ends the loop and waits for the tasks running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.idle();
  }

  /** idle waits until no task runs (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.catalogueTask) {
      await Promise.all([...this.running.values(), this.catalogueTask]);
    }
  }

  /**
   * runDue starts a task for each deployment with work due and none running,
   * and the catalogue's write when due; resolves when those have finished.
   * It never throws.
   */
  async runDue(): Promise<void> {
    if (!this.target || this.stopped) return;
    const { store, clock, log } = this.ctx;
    const started: Array<Promise<void>> = [];
    try {
      const now = clock.now();
      const due = new Set([
        ...store.offsite.deploymentsWithDueDeletes(now),
        ...store.offsite.deploymentsWithDueCopies(now),
        ...store.offsite.gcDueBy(now),
      ]);
      for (const depId of due) {
        if (this.running.has(depId)) continue;
        const task = this.work(depId)
          .catch((err: unknown) => log.error({ err, deployment: depId }, 'off-node copy task failed'))
          .finally(() => this.running.delete(depId));
        this.running.set(depId, task);
        started.push(task);
      }
      if (!this.catalogueTask && this.opts.catalogue) {
        const task = this.writeCatalogue()
          .catch((err: unknown) => log.warn({ err }, 'could not write the catalogue to the off-node target; retried later'))
          .finally(() => (this.catalogueTask = null));
        this.catalogueTask = task;
        started.push(task);
      }
    } catch (err) {
      log.error({ err }, 'could not look for due off-node work; tried again at the next tick');
    }
    await Promise.all(started);
  }

  private async work(depId: string): Promise<void> {
    await this.deletes(depId);
    await this.copies(depId);
    await this.gc(depId);
  }

  private retryAt(attempts: number): number {
    return this.ctx.clock.now() + retryDelay(attempts, this.opts.retryBaseMs, this.opts.retryMaxMs);
  }

  /** deletes removes the records of deleted snapshots from the bucket repository. */
  private async deletes(depId: string): Promise<void> {
    const { store, clock, log, config } = this.ctx;
    const due = store.offsite.deletes(depId).filter((d) => d.nextAttemptAt <= clock.now());
    if (due.length === 0) return;
    try {
      const repo = await openDeploymentRepo(this.target!, depId);
      try {
        for (const d of due) {
          if (repo) {
            await repo.deleteSnapshot(d.engineId).catch((err: unknown) => {
              if (!(err instanceof KovaError && err.code === 'SNAPSHOT_NOT_FOUND')) throw err;
            });
            store.offsite.markGcDue(depId, clock.now() + config.gcIntervalMs);
          }
          store.offsite.deleteDone(depId, d.engineId);
        }
      } finally {
        await repo?.close();
      }
    } catch (err) {
      const attempts = Math.max(...due.map((d) => d.attempts)) + 1;
      store.offsite.deleteFailed(depId, this.retryAt(attempts));
      log.warn({ err, deployment: depId }, 'could not remove snapshots from the off-node target; retried with backoff');
    }
  }

  /** copies sends the deployment's due copies to its bucket repository. */
  private async copies(depId: string): Promise<void> {
    const { store, clock, log, metrics, paths } = this.ctx;
    const now = clock.now();
    const due = store.offsite.unfinished(depId).filter((c) => c.nextAttemptAt <= now);
    if (due.length === 0) return;
    const batch: Array<{ snapshotId: string; engineId: string; failedBefore: boolean; attempts: number }> = [];
    for (const c of due) {
      const s = store.snapshots.get(c.snapshotId);
      if (!s || s.status !== 'ready' || !s.engineId) {
        // Deleted meanwhile (its removal is queued) or never ready: nothing to copy.
        if (!s || s.status === 'failed') store.offsite.removeCopy(c.snapshotId);
        continue;
      }
      batch.push({ snapshotId: s.id, engineId: s.engineId, failedBefore: c.status === 'failed', attempts: c.attempts });
    }
    if (batch.length === 0) return;
    const ids = batch.map((b) => b.snapshotId);
    store.offsite.setStatus(ids, 'copying', { error: null });
    let local: Repository | null = null;
    let remote: Repository | null = null;
    try {
      local = await openRepo(paths, depId, false);
      remote = await openDeploymentRepo(this.target!, depId, local);
      await copySnapshots(local, remote!, { snapshots: batch.map((b) => b.engineId) });
      // Read every record back: `copied` means the bucket answers with it.
      const there = new Set((await remote!.listSnapshots()).map((r) => r.id));
      const missing = batch.filter((b) => !there.has(b.engineId));
      if (missing.length > 0) throw new Error(`the bucket does not list ${missing.length} snapshot(s) just copied`);
      store.tx(() => store.offsite.setStatus(ids, 'copied', { copiedAt: clock.now(), error: null }));
      metrics.offsiteCopies.inc({ outcome: 'copied' }, batch.length);
      log.info({ deployment: depId, snapshots: ids }, 'copied snapshots to the off-node target');
    } catch (err) {
      const message = sanitize(err instanceof Error ? err.message : String(err), paths.dataDir);
      const attempts = Math.max(...batch.map((b) => b.attempts)) + 1;
      const retryAt = this.retryAt(attempts);
      store.offsite.failed(ids, message, retryAt);
      metrics.offsiteCopies.inc({ outcome: 'failed' }, batch.length);
      log.warn({ err, deployment: depId, snapshots: ids, retryAt: iso(retryAt) }, 'off-node copy failed; retried with backoff');
      for (const b of batch) {
        if (b.failedBefore) continue;
        const s = store.snapshots.get(b.snapshotId);
        this.ctx.events?.emit('offsite.failed', depId, {
          snapshot: { id: b.snapshotId, label: s?.label ?? null, createdAt: s ? iso(s.createdAt) : null },
          error: message,
          retryAt: iso(retryAt),
        });
      }
    } finally {
      await remote?.close().catch(() => undefined);
      await local?.close().catch(() => undefined);
    }
  }

  /** gc collects the bucket repository's garbage when due (batched like the local gc). */
  private async gc(depId: string): Promise<void> {
    const { store, clock, log, config } = this.ctx;
    const dueAt = store.offsite.gcDueAt(depId);
    if (dueAt === null || dueAt > clock.now()) return;
    try {
      const repo = await openDeploymentRepo(this.target!, depId);
      try {
        if (repo) {
          const rep = await repo.gc();
          log.info({ deployment: depId, packsDeleted: rep.packsDeleted, bytesAfter: rep.bytesAfter }, 'off-node garbage collected');
        }
      } finally {
        await repo?.close();
      }
      // Deletes queued during the gc made it due again with a later time; only this batch is done.
      if (store.offsite.gcDueAt(depId) === dueAt) store.offsite.clearGc(depId);
    } catch (err) {
      store.offsite.postponeGc(depId, clock.now() + config.gcIntervalMs);
      log.warn({ err, deployment: depId }, 'off-node gc failed; retried after the gc interval');
    }
  }

  /** writeCatalogue writes the catalogue when the database changed and its content differs from the last written. */
  private async writeCatalogue(): Promise<void> {
    const { store, clock } = this.ctx;
    if (clock.now() - this.lastCatalogueAt < this.opts.catalogueDebounceMs) return;
    const changes = (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    if (changes === this.lastChanges) return;
    const bytes = encodeCatalogue(dumpCatalogue(store));
    const digest = catalogueDigest(bytes);
    if (digest === this.lastDigest) {
      this.lastChanges = changes;
      return;
    }
    this.lastCatalogueAt = clock.now();
    const cat = await openCatalogueStore(this.target!, true);
    try {
      await cat!.write(CATALOGUE_OBJECT, bytes);
    } finally {
      await cat!.close();
    }
    this.lastChanges = changes;
    this.lastDigest = digest;
  }

  /** flushCatalogue writes the catalogue now if it changed (tests, and before a clean stop). */
  async flushCatalogue(): Promise<void> {
    if (!this.target || !this.opts.catalogue) return;
    await this.catalogueTask;
    this.lastCatalogueAt = -Infinity;
    await this.writeCatalogue();
  }
}
