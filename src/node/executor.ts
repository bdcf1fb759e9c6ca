/**
 * executor: applies the control plane's operations, each id exactly once.
 *
 * Delivery is at least once (network/protocol.ts): the same operation may
 * come back in the next poll, after a reconnect or after a restart of
 * either side. The journal (`applied_operations`) holds the outcome of
 * every id applied: a repeat is answered from it and changes nothing.
 *
 * - Operations whose service call is synchronous (deploy, update, restart,
 *   close, snapshot, delete-snapshot, clone, settings, settings-preview,
 *   verify) run in one SQLite transaction with the journal entry: after a crash
 *   either both the effect and its entry exist, or neither.
 * - A restore request is asynchronous (it reads the repository before it
 *   queues its job): it is made idempotent by its pre-assigned id (a
 *   restore with that id exists → that restore is the outcome), then
 *   journalled. So are a recovery and a clone from the bucket (they read the
 *   bucket first; the deployment's id makes a repeat find it) and a forget (forgetting twice
 *   finds nothing the second time). A restore plan is a question: recomputed until journalled.
 *
 * The services check that the deployment belongs to `op.userId`, as they do
 * for the API; the user row is created on the node when missing. A refusal
 * (a KovaError) becomes the outcome `{ ok: false, error }` with the API's
 * code, status and message; anything else is INTERNAL_ERROR without its
 * message (logged here), as the API reports it.
 *
 * Ordering: operations of one deployment run one at a time, in the order
 * they were received; different deployments run concurrently. An operation
 * is in hand from its receipt until its result was accepted (or dropped by
 * the control plane); a poll that hands it out again meanwhile is ignored.
 */
import type { Logger } from 'pino';
import { KovaError, StorageUnavailableError, isDatabaseUnavailable } from '../core/errors.js';
import { AppliedOperations } from '../db/node-journal.js';
import type { Operation, OperationResult, WireError } from '../network/protocol.js';
import type { Services } from '../services/wire.js';
import { deploymentView, restorePlanView, restoreView, retentionPreviewView, settingsView, snapshotView } from '../services/views.js';
import type { StateSync } from './state-sync.js';

/** What the journal keeps of an outcome: the state documents are built fresh whenever it is sent. */
export type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: WireError };

/** Posts a result; resolves once a replica accepted it or said it no longer knows the operation. */
export type PostResult = (opId: string, result: OperationResult) => Promise<void>;

/** Server-side statuses whose message is meant for the user (as the API decides, api/errors.ts). */
const TOLD_STATUSES = new Set([503, 507]);

/** wireError turns what a service threw into the error the user is answered with. */
export function wireError(err: unknown, opId: string): WireError {
  if (isDatabaseUnavailable(err)) err = new StorageUnavailableError(err);
  if (err instanceof KovaError) {
    if (err.status < 500 || TOLD_STATUSES.has(err.status)) {
      const details = Object.keys(err.details).length > 0 ? { details: { ...err.details } } : {};
      return { code: err.code, message: err.message, status: err.status, ...details };
    }
    return { code: err.code, message: `internal error (operation ${opId})`, status: err.status };
  }
  return { code: 'INTERNAL_ERROR', message: `internal error (operation ${opId})`, status: 500 };
}

export class Executor {
  readonly journal: AppliedOperations;
  private readonly inHand = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();
  private releaseWaiters: Array<() => void> = [];

  constructor(
    private readonly services: Services,
    private readonly sync: StateSync,
    private readonly post: PostResult,
    private readonly log: Logger,
    /** Called when an operation could not be handled (a refused token among them); it is retried when handed out again. */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.journal = new AppliedOperations(services.ctx.store.db);
  }

  /** accept queues the operations of a poll (oldest first) that are not in hand already; returns how many were new. */
  accept(ops: readonly Operation[]): number {
    let fresh = 0;
    for (const op of ops) {
      if (this.inHand.has(op.id)) continue;
      fresh++;
      this.inHand.add(op.id);
      const key = op.payload.deploymentId;
      const chain = (this.chains.get(key) ?? Promise.resolve())
        .then(() => this.handle(op))
        .catch((err: unknown) => {
          this.release(op.id);
          this.onError(err);
        });
      this.chains.set(key, chain);
      void chain.finally(() => {
        if (this.chains.get(key) === chain) this.chains.delete(key);
      });
    }
    return fresh;
  }

  /** released resolves the next time an operation leaves the hand (its result taken, or its handling failed). */
  released(): Promise<void> {
    return new Promise((resolve) => this.releaseWaiters.push(resolve));
  }

  private release(opId: string): void {
    this.inHand.delete(opId);
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const w of waiters) w();
  }

  /** idle resolves once every accepted operation was applied and its result posted. */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all(this.chains.values());
  }

  private async handle(op: Operation): Promise<void> {
    const outcome = await this.apply(op);
    this.sync.poke();
    await this.post(op.id, await this.result(op, outcome));
    this.release(op.id);
  }

  /** apply applies an operation once: a repeated id gets the journalled outcome and changes nothing. */
  async apply(op: Operation): Promise<Outcome> {
    const done = this.journal.get(op.id);
    if (done) return done.result as Outcome;
    const { store, clock } = this.services.ctx;
    const p = op.payload;
    try {
      if (p.kind === 'recover' || p.kind === 'clone-offsite' || p.kind === 'forget') {
        let value: unknown = null;
        if (p.kind === 'recover') {
          const { kind: _kind, deploymentId: _id, ...request } = p;
          value = deploymentView(await this.services.moves.recover(op.userId, request));
        } else if (p.kind === 'clone-offsite') {
          const { kind: _kind, deploymentId, ...request } = p;
          value = deploymentView(await this.services.moves.cloneFrom(op.userId, deploymentId, request));
        } else await this.services.moves.forget(op.userId, p.deploymentId);
        const outcome: Outcome = { ok: true, value };
        this.remember(op, outcome);
        return outcome;
      }
      if (p.kind === 'restore' || p.kind === 'restore-plan') {
        const value =
          p.kind === 'restore'
            ? restoreView(
                await this.services.restores.request(op.userId, p.deploymentId, p.snapshotId, p.safetySnapshot, p.selection, {
                  id: p.restoreId,
                }),
              )
            : restorePlanView(await this.services.restores.plan(op.userId, p.deploymentId, p.snapshotId, p.selection));
        const outcome: Outcome = { ok: true, value };
        this.remember(op, outcome);
        return outcome;
      }
      return store.tx(() => {
        this.ensureUser(op.userId);
        const outcome: Outcome = { ok: true, value: this.applySync(op) };
        this.journal.record(op.id, p.kind, outcome, clock.now());
        return outcome;
      });
    } catch (err) {
      if (!(err instanceof KovaError)) this.log.error({ err, operation: op.id, kind: p.kind }, 'operation failed');
      const outcome: Outcome = { ok: false, error: wireError(err, op.id) };
      this.remember(op, outcome);
      return outcome;
    }
  }

  /** applySync calls the service for a synchronous operation (inside the journal's transaction); returns its API value. */
  private applySync(op: Operation): unknown {
    const s = this.services;
    const p = op.payload;
    const u = op.userId;
    switch (p.kind) {
      case 'deploy':
        return deploymentView(s.deployments.create(u, p.sdl, p.name, { id: p.deploymentId }));
      case 'update':
        return deploymentView(s.deployments.update(u, p.deploymentId, p.sdl, p.snapshot));
      case 'restart':
        return deploymentView(s.deployments.restart(u, p.deploymentId));
      case 'close':
        return deploymentView(s.deployments.close(u, p.deploymentId));
      case 'clone':
        return deploymentView(s.deployments.clone(u, p.deploymentId, p.snapshotId, p.name, { id: p.newDeploymentId }));
      case 'snapshot':
        return snapshotView(s.snapshots.create(u, p.deploymentId, p.label, { id: p.snapshotId }));
      case 'delete-snapshot':
        s.snapshots.delete(u, p.deploymentId, p.snapshotId);
        return null;
      case 'settings':
        return settingsView(s.settings.put(u, p.deploymentId, p.input), s.ctx.config.minSnapshotIntervalMs);
      case 'settings-preview':
        return retentionPreviewView(s.settings.preview(u, p.deploymentId, p.input));
      case 'verify':
        // The check's row (queued); its job runs after the transaction, like a snapshot's.
        return s.verifications.request(u, p.deploymentId, p.full, { id: p.verificationId });
      default:
        throw new KovaError('UNKNOWN_OPERATION', `this node does not know the operation ${(p as { kind: string }).kind}`, { status: 400 });
    }
  }

  /** ensureUser creates the user row an operation acts for, when the node has none yet (its name is its id). */
  private ensureUser(userId: string): void {
    const { store, clock } = this.services.ctx;
    if (!store.users.get(userId)) store.users.insert({ id: userId, name: userId, createdAt: clock.now() });
  }

  /** remember journals an outcome reached outside the journal's transaction (best effort: a repeat recomputes it). */
  private remember(op: Operation, outcome: Outcome): void {
    try {
      if (!this.journal.get(op.id)) this.journal.record(op.id, op.payload.kind, outcome, this.services.ctx.clock.now());
    } catch (err) {
      this.log.warn({ err, operation: op.id }, 'could not journal the outcome of an operation');
    }
  }

  /** result is the outcome as sent: with the current documents of the deployments it touched. */
  async result(op: Operation, outcome: Outcome): Promise<OperationResult> {
    if (!outcome.ok) return outcome;
    const p = op.payload;
    const question = p.kind === 'restore-plan' || p.kind === 'settings-preview';
    const state = question ? null : await this.sync.document(p.deploymentId);
    const extra = p.kind === 'clone' ? await this.sync.document(p.newDeploymentId) : null;
    return { ok: true, state, ...(extra ? { extraStates: [extra] } : {}), value: outcome.value };
  }
}
