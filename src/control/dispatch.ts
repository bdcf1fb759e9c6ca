/**
 * dispatch: asking a node to do something and waiting for its answer.
 *
 *   1. The node must be online (a heartbeat younger than the node timeout),
 *      else 503 NODE_UNAVAILABLE at once: nothing is queued.
 *   2. The operation is queued in the catalogue (any replica's long poll
 *      hands it to the node) and its result awaited, up to `waitMs`.
 *   3. A result: its deployment documents are applied to the catalogue
 *      (so the answer and every later read agree), then an `ok: false` is
 *      thrown as the error the all-in-one would have thrown.
 *   4. No result in time (or this replica is stopping): the operation is
 *      withdrawn if no node has been handed it yet (`withdrawn` runs, 503
 *      "nothing was done"); else the node has it and its effect will appear
 *      (503 with the operation's id). Nothing is ever undone or closed here
 *      because a node is slow or unreachable.
 *
 * Concurrency: any number of dispatches run at once, on any replica; the
 * catalogue orders them. The node applies each operation id once.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { DeploymentState, Operation, OperationPayload, OperationResult } from '../network/protocol.js';
import { type Catalogue, type CatalogueNode, nodeStatus } from './catalogue.js';
import { NodeUnavailableError, errorFromWire } from './errors.js';

export interface DispatchOptions {
  /** How long a request waits for the node's result. Default DEFAULT_WAIT_MS. */
  readonly waitMs: number;
  /** After how long without a heartbeat a node is offline. Default DEFAULT_NODE_TIMEOUT_MS. */
  readonly nodeTimeoutMs: number;
}

export const DEFAULT_WAIT_MS = 10_000;
export const DEFAULT_NODE_TIMEOUT_MS = 30_000;

/** How run() records the operation: its id (default a new one), and a replacement for the plain enqueue. */
export interface RunOptions {
  readonly id?: string;
  /** Records the operation together with what it needs (a move, recover.ts), in one transaction. */
  readonly enqueue?: (op: Operation) => Promise<void>;
}

/** A successful result, its states applied. */
export type Done = Extract<OperationResult, { ok: true }>;

export class Dispatcher {
  private readonly stopping = new AbortController();
  /** Runs in progress, so stop() can wait for their answers. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly catalogue: Catalogue,
    private readonly clock: Clock,
    private readonly opts: DispatchOptions,
    private readonly log: Logger,
  ) {}

  /** online throws NODE_UNAVAILABLE unless the node's heartbeat is recent (draining nodes still serve their deployments). */
  assertReachable(node: CatalogueNode): void {
    if (nodeStatus(node, this.clock.now(), this.opts.nodeTimeoutMs) === 'offline') throw NodeUnavailableError.offline(node);
  }

  /**
   * run asks `node` to carry out `payload` for `userId` and returns its
   * result once applied. `undo` runs when the operation did nothing: taken
   * back before any node saw it, or failed on the node (it forgets what was
   * prepared for it: a placement).
   */
  run(node: CatalogueNode, userId: string, payload: OperationPayload, undo?: () => Promise<void>, opts: RunOptions = {}): Promise<Done> {
    const p = this.runOnce(node, userId, payload, undo, opts);
    const tracked = p.catch(() => undefined);
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return p;
  }

  private async runOnce(
    node: CatalogueNode,
    userId: string,
    payload: OperationPayload,
    undo: (() => Promise<void>) | undefined,
    opts: RunOptions,
  ): Promise<Done> {
    this.assertReachable(node);
    const op = { id: opts.id ?? newId('op'), userId, payload, createdAt: this.clock.now() };
    try {
      await (opts.enqueue ? opts.enqueue(op) : this.catalogue.enqueue(op, node.id));
    } catch (err) {
      // Not queued (the database failed): nothing will run, so nothing prepared for it may stay.
      await undo?.().catch((e: unknown) =>
        this.log.warn({ err: e, operation: op.id }, 'could not undo what an unqueued operation prepared'),
      );
      throw err;
    }
    let result = await this.wait(op.id);
    if (result === null) {
      if (await this.catalogue.cancel(op.id, this.clock.now())) {
        await undo?.();
        throw new NodeUnavailableError(
          `node ${node.name} did not answer within ${Math.round(this.opts.waitMs / 1000)} s; nothing was done, try again`,
          { nodeId: node.id },
        );
      }
      // Handed out: it may have finished between the wait and the cancel.
      result = (await this.catalogue.operation(op.id))?.result ?? null;
      if (result === null) {
        throw new NodeUnavailableError(
          `node ${node.name} has the operation (${op.id}) but has not answered yet; its effect will appear when it does`,
          { nodeId: node.id, operationId: op.id },
        );
      }
    }
    if (!result.ok) {
      await undo?.();
      throw errorFromWire(result.error);
    }
    await this.apply(node.id, result);
    return result;
  }

  /** apply stores the documents a result carries (the node's result endpoint does the same: whichever comes first wins). */
  async apply(nodeId: string, result: Done): Promise<void> {
    const states: DeploymentState[] = [...(result.state ? [result.state] : []), ...(result.extraStates ?? [])];
    if (states.length > 0) await this.catalogue.applyState(nodeId, states);
  }

  /** wait is waitResult, cut short when this replica stops. */
  private async wait(opId: string): Promise<OperationResult | null> {
    const signal = this.stopping.signal;
    if (signal.aborted) return null;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<null>((resolve) => {
      onAbort = () => resolve(null);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const waiting = this.catalogue.waitResult(opId, this.opts.waitMs);
    // Left behind when this replica stops: its failure (a closed catalogue) concerns no one.
    waiting.catch(() => undefined);
    try {
      return await Promise.race([waiting, stopped]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  /**
   * stop ends every wait in progress (they answer as on a timeout) and
   * resolves once each has answered; call before closing the app and the
   * catalogue.
   */
  async stop(): Promise<void> {
    this.log.debug({ waiting: this.running.size }, 'ending waits for node results');
    this.stopping.abort();
    await Promise.all([...this.running]);
  }
}
