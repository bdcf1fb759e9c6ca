/**
 * queue: runs persistent jobs (db/jobs.ts) in the background.
 *
 * Rules: at most `concurrency` jobs run at once (a global cap), and at most
 * one per deployment (operations on one deployment are serialised: a job
 * waits while an earlier one of the same deployment runs). Jobs start in
 * the order they were queued. A kind registered with `maxRunning` has at
 * most that many of its jobs running at once across all deployments (one
 * waiting for its kind does not hold up its deployment's other jobs). A job
 * interrupted by a crash is found
 * `running` at the next start, re-queued, and its handler resumes it: every
 * handler is written to be re-entered.
 *
 * Failures of the queue's own bookkeeping (the database cannot write: disk
 * full) are logged and never escape: the job's row then stays as it was
 * (queued, or running until the next start re-queues it).
 *
 * Finished rows are kept `KEEP_FINISHED_MS` (a week, for a look at what ran
 * lately) and then deleted: at start and, after a job ends, at most once an
 * hour. Nothing reads finished jobs; without this the table only grows.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Job } from '../db/jobs.js';
import type { Store } from '../db/store.js';

export type JobHandler = (job: Job) => Promise<void>;

/** How long finished jobs are kept, and how often they are pruned at most. */
export const KEEP_FINISHED_MS = 7 * 24 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;

export class JobQueue {
  private readonly handlers = new Map<string, JobHandler>();
  private readonly kindLimits = new Map<string, number>();
  private readonly runningKinds = new Map<string, number>();
  private readonly running = new Map<number, Promise<void>>();
  private readonly busy = new Set<string>();
  private started = false;
  private stopping = false;
  private kickPending = false;
  private idleWaiters: Array<() => void> = [];
  private lastPrune = -Infinity;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly concurrency = 2,
  ) {}

  /** register sets the handler of a kind; `maxRunning` caps how many of its jobs run at once (default: no cap but the global one). */
  register(kind: string, handler: JobHandler, opts: { readonly maxRunning?: number } = {}): void {
    this.handlers.set(kind, handler);
    if (opts.maxRunning !== undefined) this.kindLimits.set(kind, opts.maxRunning);
  }

  /** hasQueued tells whether a job of the deployment waits in the queue (a long job checks it to give way). */
  hasQueued(deploymentId: string): boolean {
    return this.store.jobs.pending().some((j) => j.deploymentId === deploymentId && j.state === 'queued');
  }

  /**
   * enqueue adds a job. Call it inside the transaction that creates the rows
   * the job works on, so both exist or neither does.
   */
  enqueue(deploymentId: string, kind: string, payload: Record<string, unknown> = {}): number {
    const id = this.store.jobs.enqueue(deploymentId, kind, payload, this.clock.now());
    this.kickSoon();
    return id;
  }

  /** start re-queues jobs a crash interrupted and starts running jobs. */
  start(): number {
    const requeued = this.store.jobs.requeueRunning();
    this.started = true;
    this.prune();
    this.kick();
    return requeued;
  }

  /** prune deletes jobs finished more than KEEP_FINISHED_MS ago, at most once every PRUNE_EVERY_MS. */
  private prune(): void {
    const now = this.clock.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    try {
      this.store.jobs.prune(now - KEEP_FINISHED_MS);
    } catch (err) {
      this.log.error({ err }, 'could not delete old finished jobs');
    }
  }

  private kickSoon(): void {
    if (this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      this.kick();
    });
  }

  private kick(): void {
    try {
      this.kickUnsafe();
    } catch (err) {
      this.log.error({ err }, 'could not start queued jobs');
    }
  }

  private kickUnsafe(): void {
    if (!this.started || this.stopping) return;
    for (const job of this.store.jobs.pending()) {
      if (this.running.size >= this.concurrency) break;
      if (job.state !== 'queued' || this.busy.has(job.deploymentId)) continue;
      const limit = this.kindLimits.get(job.kind);
      if (limit !== undefined && (this.runningKinds.get(job.kind) ?? 0) >= limit) continue;
      this.run(job);
    }
    if (this.running.size === 0 && this.idleWaiters.length > 0 && this.store.jobs.pending().length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private run(job: Job): void {
    const handler = this.handlers.get(job.kind);
    this.store.jobs.markRunning(job.id, this.clock.now());
    this.busy.add(job.deploymentId);
    this.runningKinds.set(job.kind, (this.runningKinds.get(job.kind) ?? 0) + 1);
    const log = this.log.child({ job: job.id, kind: job.kind, deployment: job.deploymentId });
    const p = (async () => {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler(job);
    })()
      .then(
        () => this.store.jobs.finish(job.id, 'done', null, this.clock.now()),
        (err: unknown) => {
          log.error({ err }, 'job failed');
          this.store.jobs.finish(job.id, 'failed', err instanceof Error ? err.message : String(err), this.clock.now());
        },
      )
      .catch((err: unknown) => log.error({ err }, 'could not record the end of a job'))
      .finally(() => {
        this.busy.delete(job.deploymentId);
        this.runningKinds.set(job.kind, (this.runningKinds.get(job.kind) ?? 1) - 1);
        this.running.delete(job.id);
        this.prune();
        this.kick();
      });
    this.running.set(job.id, p);
  }

  /** idle resolves once no job is queued or running (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.running.size === 0 && this.store.jobs.pending().length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** stop starts no new job and waits for the running ones (at most `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.running.values()),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  }
}
