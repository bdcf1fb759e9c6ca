/**
 * verification-service: scheduled checks that every byte a deployment stored
 * can still be read back intact.
 *
 * The data (the repository's packs) is split into parts: parts = ceil(30
 * days / interval), so that checking one part per interval reads every byte
 * at least once every 30 days (engine/verify: packSlice; a pack's part never
 * changes). tick() (the scheduler's tick) queues, for each active
 * deployment whose check is due, a check of the next part, and moves the
 * rotation on. A check can also be requested now, of the next part or of
 * all of them.
 *
 * A check is a background job (kind `verify`) that:
 * - runs one at a time on the node (JobQueue maxRunning 1);
 * - is serialised with its deployment's other jobs like every job, but reads
 *   its part in STEPS_PER_PART steps and, between two steps, gives way to
 *   any job of its deployment waiting in the queue (it queues itself again
 *   behind it), so a snapshot or restore never waits for more than one step;
 * - takes the repository's read lock for each step (engine verify), which
 *   only gc's exclusive lock conflicts with;
 * - resumes after a crash from the last step it recorded.
 *
 * A check that finds damage marks the snapshots it reaches
 * (Repository.affectedBy) as damaged and reports verification.failed to
 * webhooks; so does a check that could not run. Warnings (packs no index
 * lists, left by an interrupted snapshot) are not findings.
 */
import { iso } from '../core/clock.js';
import { ConflictError, KovaError, RepoNotFoundError, ValidationError } from '../core/errors.js';
import { formatDuration } from '../core/units.js';
import { newId } from '../core/ids.js';
import type { Job } from '../db/jobs.js';
import type { Store } from '../db/store.js';
import { DEFAULT_VERIFICATION } from '../db/settings.js';
import type { Verification, VerificationFinding } from '../db/verifications.js';
import type { Finding } from '../engine/verify/verify.js';
import { nextRunAfter } from '../scheduler/policy.js';
import { JobKind, type ServiceContext } from './context.js';
import { activeDeployment, sanitize } from './guards.js';
import { openRepo } from './repos.js';

const DAY_MS = 86_400_000;

/** Every byte is read at least once per this span (when checks run on schedule). */
export const FULL_CYCLE_MS = 30 * DAY_MS;

/** The longest verification interval: one part per FULL_CYCLE_MS is then the whole data. */
export const MAX_VERIFY_INTERVAL_MS = FULL_CYCLE_MS;

/** A part is read in this many steps, giving way to the deployment's other jobs between them. */
export const STEPS_PER_PART = 8;

/** How many findings a check keeps (its count keeps counting). */
const MAX_FINDINGS_KEPT = 100;

/** partsFor is how many parts the data is split into for checks every `intervalMs`. */
export function partsFor(intervalMs: number): number {
  return Math.max(1, Math.ceil(FULL_CYCLE_MS / Math.max(1, intervalMs)));
}

/**
 * lastFullCheckAt is the time since when every part has been read with no
 * finding: the start of the oldest of the most recent checks that together
 * cover every part (of `parts`), provided none of them, nor any check after
 * them, failed. `finished` is newest first. Null when there is no such time.
 */
export function lastFullCheckAt(finished: Iterable<Verification>, parts: number): number | null {
  const covered = new Set<number>();
  for (const v of finished) {
    if (v.status === 'failed') return null;
    if (v.part === null) return v.startedAt ?? v.createdAt;
    if (v.parts !== parts) continue;
    covered.add(v.part);
    if (covered.size === parts) return v.startedAt ?? v.createdAt;
  }
  return null;
}

/** What a deployment's verification looks like now (the snapshot list shows it). */
export interface VerificationStatus {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly interval: string;
  readonly nextRunAt: number | null;
  readonly nextPart: number;
  readonly parts: number;
  readonly lastVerification: Verification | null;
  readonly lastFullCheckAt: number | null;
}

/** verificationSetting is a deployment's verification setting, the defaults applied. */
function verificationSetting(store: Store, depId: string): { enabled: boolean; intervalMs: number; interval: string } {
  const s = store.settings.get(depId);
  const intervalMs = s.verifyIntervalMs ?? DEFAULT_VERIFICATION.intervalMs;
  return {
    enabled: s.verifyEnabled ?? DEFAULT_VERIFICATION.enabled,
    intervalMs,
    interval: s.verifyInterval ?? formatDuration(intervalMs),
  };
}

/**
 * verificationStatus says where a deployment's verification stands, from
 * its rows alone (no owner check): VerificationService.status, and the
 * node's deployment documents (node/state-sync.ts).
 */
export function verificationStatus(store: Store, depId: string): VerificationStatus {
  const set = verificationSetting(store, depId);
  const parts = partsFor(set.intervalMs);
  const sched = store.verifications.schedule(depId);
  return {
    ...set,
    nextRunAt: set.enabled ? (sched?.nextRunAt ?? null) : null,
    nextPart: sched && sched.parts === parts ? sched.nextPart % parts : 0,
    parts,
    lastVerification: store.verifications.page(depId, 1)[0] ?? null,
    // Read only as far as needed: a deployment's document is built after every change.
    lastFullCheckAt: lastFullCheckAt(store.verifications.finished(depId), parts),
  };
}

export class VerificationService {
  constructor(private readonly ctx: ServiceContext) {
    ctx.jobs.register(JobKind.Verify, (job) => this.verifyJob(job), { maxRunning: 1 });
  }

  /** setting is a deployment's verification setting, the defaults applied. */
  private setting(depId: string): { enabled: boolean; intervalMs: number; interval: string } {
    return verificationSetting(this.ctx.store, depId);
  }

  /**
   * tick queues the checks due now (one per deployment at most: a check
   * still queued or running is not doubled, its due time just moves on) and
   * returns how many. A deployment seen for the first time gets its first
   * check one interval from now. A changed interval restarts the rotation
   * when the number of parts changes, and never leaves the next check
   * further away than one new interval.
   */
  tick(): number {
    const { store, clock } = this.ctx;
    const now = clock.now();
    let queued = 0;
    for (const s of store.settings.verificationList()) {
      if (!s.enabled) continue;
      const parts = partsFor(s.intervalMs);
      const soonest = nextRunAfter(now, s.deploymentId, s.intervalMs);
      const cur = store.verifications.schedule(s.deploymentId);
      if (!cur) {
        store.verifications.setSchedule({ deploymentId: s.deploymentId, nextRunAt: soonest, nextPart: 0, parts });
        continue;
      }
      const nextPart = cur.parts === parts ? cur.nextPart % parts : 0;
      const nextRunAt = Math.min(cur.nextRunAt, soonest);
      if (nextRunAt > now) {
        if (nextRunAt !== cur.nextRunAt || nextPart !== cur.nextPart || parts !== cur.parts)
          store.verifications.setSchedule({ deploymentId: s.deploymentId, nextRunAt, nextPart, parts });
        continue;
      }
      store.tx(() => {
        let part = nextPart;
        if (store.verifications.active(s.deploymentId).length === 0) {
          this.enqueue(s.deploymentId, 'scheduled', part, parts);
          part = (part + 1) % parts;
          queued++;
        }
        store.verifications.setSchedule({ deploymentId: s.deploymentId, nextRunAt: soonest, nextPart: part, parts });
      });
    }
    return queued;
  }

  /**
   * request queues a check now (202): of the next part of the rotation (which
   * then moves on), or with `full` of all the data. 409
   * VERIFICATION_IN_PROGRESS while one is queued or running. `opts.id`
   * names the check (network mode: the control plane chooses it); a check
   * of the deployment with that id already recorded is answered as it is.
   */
  request(userId: string, depId: string, full: boolean, opts: { id?: string } = {}): Verification {
    const { store, clock } = this.ctx;
    return store.tx(() => {
      activeDeployment(store, userId, depId);
      const known = opts.id === undefined ? undefined : store.verifications.get(opts.id);
      if (known?.deploymentId === depId) return known;
      const busy = store.verifications.active(depId)[0];
      if (busy) {
        throw new ConflictError('VERIFICATION_IN_PROGRESS', `a check of deployment ${depId} is already ${busy.status}`, {
          verification: busy.id,
        });
      }
      const set = this.setting(depId);
      const parts = partsFor(set.intervalMs);
      if (full) return this.enqueue(depId, 'manual', null, parts, opts.id);
      const cur = store.verifications.schedule(depId);
      const part = cur && cur.parts === parts ? cur.nextPart % parts : 0;
      store.verifications.setSchedule({
        deploymentId: depId,
        nextRunAt: cur?.nextRunAt ?? nextRunAfter(clock.now(), depId, set.intervalMs),
        nextPart: (part + 1) % parts,
        parts,
      });
      return this.enqueue(depId, 'manual', part, parts, opts.id);
    });
  }

  /** list returns a deployment's checks, newest first, `limit` at a time, older than `before` when given. */
  list(userId: string, depId: string, limit: number, before?: string): Verification[] {
    const { store } = this.ctx;
    activeDeployment(store, userId, depId);
    if (before !== undefined && store.verifications.get(before)?.deploymentId !== depId)
      throw new ValidationError('INVALID_CURSOR', `${before} is not a check of deployment ${depId}`);
    return store.verifications.page(depId, limit, before);
  }

  /** status says where a deployment's verification stands. */
  status(userId: string, depId: string): VerificationStatus {
    activeDeployment(this.ctx.store, userId, depId);
    return verificationStatus(this.ctx.store, depId);
  }

  /** enqueue records a queued check and its job (call inside a transaction). */
  private enqueue(depId: string, trigger: 'scheduled' | 'manual', part: number | null, parts: number, id?: string): Verification {
    const v = this.ctx.store.verifications.insert({
      id: id ?? newId('ver'),
      deploymentId: depId,
      trigger,
      part,
      parts,
      createdAt: this.ctx.clock.now(),
    });
    this.ctx.jobs.enqueue(depId, JobKind.Verify, { verificationId: v.id });
    return v;
  }

  private async verifyJob(job: Job): Promise<void> {
    const { store, clock, paths, log } = this.ctx;
    const v = store.verifications.get(job.payload.verificationId as string);
    if (!v || (v.status !== 'queued' && v.status !== 'running')) return;
    if (store.deployments.get(v.deploymentId)?.status !== 'active') {
      store.verifications.update(v.id, { status: 'failed', finishedAt: clock.now(), error: 'the deployment was closed' });
      return;
    }
    if (v.status === 'queued') store.verifications.update(v.id, { status: 'running', startedAt: clock.now() });
    let { stepsDone, bytesRead, packsRead } = v;
    const findings = new Map<string, VerificationFinding>(v.findingList.map((f) => [findingKey(f), f]));
    let count = v.findings;
    let repo;
    try {
      repo = await openRepo(paths, v.deploymentId, false);
    } catch (err) {
      // Nothing stored yet: nothing to read, and nothing damaged.
      if (err instanceof RepoNotFoundError) return this.finish(v.id, [], count, null);
      return this.finish(v.id, [], count, err);
    }
    try {
      while (stepsDone < STEPS_PER_PART) {
        const share =
          v.part === null
            ? { slice: stepsDone, of: STEPS_PER_PART }
            : { slice: v.part + v.parts * stepsDone, of: v.parts * STEPS_PER_PART };
        let packs = 0;
        const report = await repo.verify({ readShare: share, onProgress: (_done, total) => (packs = total) });
        for (const f of report.findings) {
          if (f.severity !== 'error') continue;
          const k = findingKey(f);
          if (findings.has(k)) continue;
          count++;
          if (findings.size < MAX_FINDINGS_KEPT)
            findings.set(k, { kind: f.kind, message: f.message, ...(f.pack ? { pack: f.pack } : {}), ...(f.blob ? { blob: f.blob } : {}) });
        }
        stepsDone++;
        bytesRead += report.bytesRead;
        packsRead += packs;
        store.verifications.update(v.id, { stepsDone, bytesRead, packsRead, findings: count, findingList: [...findings.values()] });
        if (stepsDone < STEPS_PER_PART && this.ctx.jobs.hasQueued(v.deploymentId)) {
          // Give way: the deployment's waiting job runs first, this check goes on after it.
          this.ctx.jobs.enqueue(v.deploymentId, JobKind.Verify, { verificationId: v.id });
          return;
        }
      }
      const list = [...findings.values()];
      let damaged: string[] = [];
      if (list.length > 0) {
        const affected = await repo.affectedBy(list.map((f) => ({ severity: 'error', ...f }) satisfies Finding));
        damaged = store.snapshots.markDamaged(v.deploymentId, affected, clock.now()).map((s) => s.id);
      }
      this.finish(v.id, damaged, count, null);
    } catch (err) {
      log.warn({ err, verification: v.id, deployment: v.deploymentId }, 'verification could not run');
      this.finish(v.id, [], count, err);
    } finally {
      await repo.close();
    }
  }

  /** finish records the end of a check and reports a failed one. */
  private finish(id: string, damaged: string[], findings: number, err: unknown): void {
    const { store, clock, events, paths } = this.ctx;
    const error =
      err === null ? null : sanitize(err instanceof KovaError || err instanceof Error ? err.message : String(err), paths.dataDir);
    const failed = findings > 0 || error !== null;
    store.verifications.update(id, { status: failed ? 'failed' : 'ok', finishedAt: clock.now(), damagedSnapshots: damaged, error });
    const v = store.verifications.get(id)!;
    this.ctx.log.info(
      { verification: id, deployment: v.deploymentId, part: v.part, parts: v.parts, bytesRead: v.bytesRead, findings, error },
      failed ? 'verification failed' : 'verification passed',
    );
    if (!failed) return;
    events?.emit('verification.failed', v.deploymentId, {
      verification: {
        id: v.id,
        trigger: v.trigger,
        part: v.part,
        parts: v.parts,
        startedAt: v.startedAt === null ? null : iso(v.startedAt),
        finishedAt: iso(v.finishedAt!),
        bytesRead: v.bytesRead,
        findings: v.findings,
        error: v.error,
      },
      damagedSnapshots: damaged.map((sid) => {
        const s = store.snapshots.get(sid);
        return { id: sid, label: s?.label ?? null, createdAt: s ? iso(s.createdAt) : null };
      }),
    });
  }
}

function findingKey(f: { kind: string; message: string; pack?: string; blob?: string }): string {
  return `${f.kind}\u0000${f.pack ?? ''}\u0000${f.blob ?? ''}\u0000${f.message}`;
}
